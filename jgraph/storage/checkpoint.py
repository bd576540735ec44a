"""Versioned checkpoints with one atomic switch.

Layout under the checkpoint location (a path or kvstore URL):
    checkpoint.json                      the manifest: the current version and where its data is
    tables/{type}/{part}/v{N}/{emb,acc}  partition tables written for version N (zarr3, one shard)
    params/v{N}.npz                      relation parameters and their optimizer state
    snapshots/epoch_{E}.json             preserved manifests (checkpoint_preservation_interval)

Writes between two commits go to fresh keys of version N+1; nothing the current manifest points at
is ever overwritten. `commit` waits for those writes and, on local disk, fsyncs them (partition
writes skip the per-file fsync: a partition is often rewritten before its version is committed),
then replaces the manifest in one atomic step (a temporary file renamed over it on local disk; a
single-object put elsewhere). A crash before
the switch leaves version N intact and readable.

One writer at a time (jgraph.storage.lock): a store takes the location's lock when opened with
`writer=True` (training does, so a second run fails at once and an unwritable location is reported
before any work) or at its first write; `writer=False` writes under another process's lock (the
non-primary processes of a distributed run). Only the lock holder deletes: after each switch and
when it opens, the data of versions up to the committed one that no manifest names; never data of a
newer version (another process's writes in flight). A reader (predict, export, ...) deletes nothing.

Every partition read is verified: a missing shard is an error (not TensorStore's fill value), and
the CRC-32 of a partition's bytes, computed by its writer as it writes them and recorded in the
manifest, is checked. A process writing under another's lock also puts that CRC-32 beside the
partition (`{key}/crc32`, fsynced with it); the lock holder's commit takes it into the manifest.
"""

from __future__ import annotations

import io
import json
import threading
import time
import weakref
import zipfile
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import numpy as np
import tensorstore as ts

from jgraph.memory import aligned_empty
from jgraph.storage import garbage, kv
from jgraph.storage.kv import CheckpointError
from jgraph.storage.lock import CheckpointLock
from jgraph.storage.shards import column_sum, read_array, read_blocks, write_array, write_blocks

MANIFEST = "checkpoint.json"
FORMAT = 1
SUM = "crc32"  # beside a partition another process wrote: its writer's CRC-32, for the manifest


class CheckpointStore:
    """Partition tables and relation parameters of one run, versioned (see module docstring)."""

    def __init__(self, location: str, context: ts.Context | None = None, io_threads: int = 4,
                 writer: bool | None = None, max_pending_writes: int = 2) -> None:
        self.url = kv.base_url(location)
        self.context = context or ts.Context()
        self.kv = kv.open_kvstore(self.url, self.context)
        self.manifest: dict[str, Any] | None = self._read_manifest()
        self.version = int(self.manifest["version"]) if self.manifest else 0
        self._pending_tables: dict[str, dict[str, str]] = {}
        self._pending_params: str | None = None
        self._pending_sums: dict[str, str] = {}  # table key -> CRC-32 of what this process wrote
        self._futures: dict[tuple[str, int], Future] = {}
        self._other_futures: list[Future] = []
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="jgraph-io")
        # partition writes skip TensorStore's fsync per file (about 25 ms of CPU per 48 MB on the
        # benchmark VM, and a partition is rewritten many times between two commits): commit
        # fsyncs what the new manifest names, once, before the switch
        self._write_context = ts.Context({"file_io_sync": False}, self.context)
        # each pending write holds a copy of its partition: at most this many at once (memory bound)
        self._write_slots = threading.BoundedSemaphore(max_pending_writes)
        self.writer = writer
        self.owner_lock = CheckpointLock(self.kv, self.url)
        weakref.finalize(self, self.owner_lock.release)  # a store dropped unclosed lets go
        if writer:
            self.owner_lock.acquire()
            if self.manifest is not None:
                self.collect_garbage()  # leftovers of a crash between writes and the switch
        self.bytes_written = 0
        self.bytes_read = 0
        self.io_seconds = 0.0  # time spent in background reads and writes (hidden or not)

    # ------------------------------------------------------------------ manifest
    def _read_manifest(self) -> dict[str, Any] | None:
        r = self.kv.read(MANIFEST).result()
        if r.state != "value":
            return None
        try:
            m = json.loads(r.value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CheckpointError(f"{self.url}{MANIFEST}: unreadable manifest: {e}") from None
        if m.get("format") != FORMAT:
            raise CheckpointError(f"{self.url}{MANIFEST}: unknown format {m.get('format')!r}")
        return m

    def _claim(self) -> None:
        """Before a write: take the location's lock unless it is held or another process's."""
        if self.writer is not False:
            self.owner_lock.acquire()

    def exists(self) -> bool:
        return self.manifest is not None

    @property
    def next_version(self) -> int:
        return self.version + 1

    def _write_manifest(self, key: str, manifest: dict[str, Any]) -> None:
        data = json.dumps(manifest, indent=1, sort_keys=True).encode("utf-8")
        kv.write_object(self.url, key, data, self.kv)  # the atomic switch

    # ------------------------------------------------------------------ tables
    def table_key(self, etype: str, part: int) -> str | None:
        """The key of the newest data of a partition (pending first, then committed)."""
        pend = self._pending_tables.get(etype, {}).get(str(part))
        if pend is not None:
            return pend
        if self.manifest:
            return self.manifest["tables"].get(etype, {}).get(str(part))
        return None

    def has_partition(self, etype: str, part: int) -> bool:
        return self.table_key(etype, part) is not None

    def write_partition(self, etype: str, part: int, emb: np.ndarray, acc: np.ndarray,
                        done: Callable[[], None] | None = None, count: int | None = None) -> Future:
        """Write a partition for the next version in the background; returns its future.

        A later read of the same partition waits for this write. With `max_pending_writes` writes
        already in flight this call waits, so the copies held for writing stay bounded. `done()`
        runs when the write no longer needs `emb` and `acc` (finished or failed). count: the
        partition's real rows (the first `count` of emb; the rest padding), whose mean row is
        stored beside them (`read_partition_mean`)."""
        self._claim()
        key = self.partition_key(etype, part)
        prev = self._futures.get((etype, part))

        def work() -> None:
            try:
                if prev is not None:
                    prev.result()  # keep writes of one partition in order
                self._write_tables(key, emb.shape, str(emb.dtype), lambda a, b: emb[a:b], acc, count)
            finally:
                self._write_slots.release()
                if done is not None:
                    done()

        self._write_slots.acquire()  # waits while max_pending_writes writes are in flight
        with self._lock:
            self._pending_tables.setdefault(etype, {})[str(part)] = key
            fut = self._pool.submit(work)
            self._futures[(etype, part)] = fut
        self.bytes_written += emb.nbytes + acc.nbytes
        return fut

    def _write_tables(self, key: str, shape: tuple[int, ...], dtype: str,
                      emb_block: Callable[[int, int], np.ndarray], acc: np.ndarray,
                      count: int | None = None) -> None:
        """A partition's emb (shard by shard from `emb_block`) and acc arrays under `key`, timed;
        with `count`, also the mean of its first `count` rows (float32 [D], as "mean")."""
        t0 = time.perf_counter()
        total = np.zeros(shape[1], np.float64)
        crc = 0

        def block(a: int, b: int) -> np.ndarray:
            nonlocal crc
            rows = np.ascontiguousarray(emb_block(a, b), dtype)
            crc = zlib.crc32(rows, crc)
            if count is not None and a < count:
                total[:] += column_sum(rows[: count - a])
            return rows

        write_blocks(kv.join(self.url, key, "emb"), shape, dtype, block, self._write_context)
        write_array(kv.join(self.url, key, "acc"), acc, self._write_context)
        self._pending_sums[key] = f"{zlib.crc32(np.ascontiguousarray(acc), crc):08x}"
        if self.writer is False:  # under process 0's lock: its commit reads the sum from here
            self.kv.write(f"{key}/{SUM}", self._pending_sums[key].encode()).result()
        if count is not None:
            write_array(kv.join(self.url, key, "mean"), (total / max(count, 1)).astype(np.float32),
                        self._write_context)
        self.io_seconds += time.perf_counter() - t0

    def write_partition_blocks(self, etype: str, part: int, shape: tuple[int, int],
                               emb_block: Callable[[int, int], np.ndarray], acc: np.ndarray,
                               dtype: str = "float32", count: int | None = None) -> None:
        """Write a partition for the next version now, in the caller's thread, one shard of rows at a
        time from `emb_block(start, stop)` (e.g. slices of the working table): no copy of the
        whole partition is ever held. count: as in `write_partition`."""
        self._claim()
        prev = self._futures.pop((etype, part), None)
        if prev is not None:
            prev.result()
        key = self.partition_key(etype, part)
        self._write_tables(key, shape, dtype, emb_block, acc, count)
        with self._lock:
            self._pending_tables.setdefault(etype, {})[str(part)] = key
        self.bytes_written += np.dtype(dtype).itemsize * shape[0] * shape[1] + acc.nbytes

    def _written_key(self, etype: str, part: int) -> str | None:
        """`table_key` once a pending write of the partition has finished (read in the caller's
        thread)."""
        pending = self._futures.get((etype, part))
        if pending is not None:
            pending.result()
        return self.table_key(etype, part)

    def read_partition_blocks(self, etype: str, part: int
                              ) -> tuple[Iterator[tuple[int, np.ndarray]], np.ndarray] | None:
        """The newest data of a partition as (iterator of (start row, embedding rows) one shard at a
        time, acc [M]), read in the caller's thread (after a pending write of it); None if never
        written."""
        key = self._written_key(etype, part)
        if key is None:
            return None
        t0 = time.perf_counter()
        strict = self._strict(key)
        acc = self._verified(key, lambda: read_array(kv.join(self.url, key, "acc"), self.context,
                                                     strict=strict))
        self.io_seconds += time.perf_counter() - t0

        def blocks() -> Iterator[tuple[int, np.ndarray]]:
            it = read_blocks(kv.join(self.url, key, "emb"), self.context, strict)
            crc = 0
            while True:
                t = time.perf_counter()
                nxt = self._verified(key, lambda: next(it, None))
                self.io_seconds += time.perf_counter() - t
                if nxt is None:
                    self._check_sum(key, zlib.crc32(np.ascontiguousarray(acc), crc))
                    return
                crc = zlib.crc32(np.ascontiguousarray(nxt[1]), crc)
                self.bytes_read += nxt[1].nbytes
                yield nxt

        self.bytes_read += acc.nbytes
        return blocks(), acc

    def read_partition(self, etype: str, part: int,
                       alloc: Callable[[tuple[int, ...], np.dtype], np.ndarray] = aligned_empty
                       ) -> Future:
        """Future of (emb [M, D], acc [M]) of the newest data of a partition (None if never
        written); emb is read into `alloc(shape, dtype)` (default: a fresh aligned buffer)."""
        key = self.table_key(etype, part)
        pending = self._futures.get((etype, part))
        if key is None:
            fut: Future = Future()
            fut.set_result(None)
            return fut

        def work():
            if pending is not None:
                pending.result()  # a read waits for a pending write of the same partition
            t0 = time.perf_counter()
            strict = self._strict(key)
            emb, acc = self._verified(key, lambda: (
                read_array(kv.join(self.url, key, "emb"), self.context, alloc, strict),
                read_array(kv.join(self.url, key, "acc"), self.context, strict=strict)))
            self._check_sum(key, zlib.crc32(np.ascontiguousarray(acc),
                                            zlib.crc32(np.ascontiguousarray(emb))))
            self.bytes_read += emb.nbytes + acc.nbytes
            self.io_seconds += time.perf_counter() - t0
            return emb, acc

        return self._pool.submit(work)

    def _verified(self, key: str, read: Callable[[], Any]) -> Any:
        """`read()`, with TensorStore's "not found" (a table or shard file gone) as `_missing`, its
        "data loss" as a CheckpointError."""
        try:
            return read()
        except ValueError as e:
            if "DATA_LOSS" in str(e):  # a truncated or altered shard index (its CRC-32C)
                raise CheckpointError(f"{self.url}{key}: damaged ({str(e).splitlines()[0]})") from None
            if "NOT_FOUND" not in str(e):
                raise
            raise self._missing(key, str(e).splitlines()[0]) from None

    def _missing(self, key: str, why: str) -> CheckpointError:
        """The error for data the manifest names that is not there: a reader whose version was
        committed over and collected is told to open again; otherwise the checkpoint is damaged."""
        now = self._read_manifest()
        if self.owner_lock.record is None and now and now["version"] != self.version:
            return CheckpointError(f"{self.url}: version {self.version} was replaced by version "
                                   f"{now['version']} while being read (a run is training on it); "
                                   "open it again")
        return CheckpointError(f"{self.url}{key}: data missing ({why}); the checkpoint is damaged")

    def _expected_sum(self, key: str) -> str | None:
        """The CRC-32 its writer recorded for a partition (None: written before checksums)."""
        return self._pending_sums.get(key) or (self.manifest or {}).get("checksums", {}).get(key)

    def _strict(self, key: str) -> bool:
        """Whether a missing chunk of `key` is an error: yes, unless written before every chunk
        was stored (version < the manifest's `verified_since`), when it reads as zeros as before."""
        since = (self.manifest or {}).get("verified_since", self.next_version)
        return self._expected_sum(key) is not None or garbage.key_version(key) >= since

    def _check_sum(self, key: str, crc: int) -> None:
        """Compare a partition's CRC-32 as read with the one its writer recorded (if any)."""
        want = self._expected_sum(key)
        if want is not None and want != f"{crc:08x}":
            raise CheckpointError(f"{self.url}{key}: checksum {crc:08x}, the manifest says {want}; "
                                  "the checkpoint is damaged")

    def read_partition_mean(self, etype: str, part: int) -> np.ndarray | None:
        """The mean row (float32 [D]) of the newest data of a partition, as its writer stored it;
        None if it was never written or written without one (checkpoints before the means)."""
        key = self._written_key(etype, part)
        if key is None:
            return None
        try:
            return read_array(kv.join(self.url, key, "mean"), self.context)
        except ValueError as e:
            if "NOT_FOUND" in str(e):  # tensorstore: no such array
                return None
            raise

    def partition_key(self, etype: str, part: int) -> str:
        """The key a partition written before the next commit gets (known to every process)."""
        return f"tables/{etype}/{part}/v{self.next_version}"

    def add_pending(self, etype: str, part: int) -> None:
        """Count a partition another process wrote for the next version into the next commit, with
        the CRC-32 its writer recorded beside it (the `SUM` object)."""
        key = self.partition_key(etype, part)
        r = self.kv.read(f"{key}/{SUM}").result()
        if r.state != "value":
            raise self._missing(key, f"no {SUM} record from the process that wrote it")
        self._pending_tables.setdefault(etype, {})[str(part)] = key
        self._pending_sums[key] = r.value.decode()

    def refresh(self) -> None:
        """Re-read the manifest another process committed; forget this process's pending writes."""
        self.wait()
        self.manifest = self._read_manifest()
        self.version = int(self.manifest["version"]) if self.manifest else 0
        self._pending_tables.clear()
        self._pending_sums.clear()
        self._pending_params = None
        self._futures.clear()

    # ------------------------------------------------------------------ params
    def write_params(self, arrays: dict[str, np.ndarray]) -> Future:
        self._claim()
        key = f"params/v{self.next_version}.npz"
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        data = buf.getvalue()
        self._pending_params = key
        fut = self._pool.submit(lambda: self.kv.write(key, data).result())
        self._other_futures.append(fut)
        return fut

    def read_params(self) -> dict[str, np.ndarray] | None:
        key = self._pending_params or (self.manifest or {}).get("params")
        if key is None:
            return None
        r = self.kv.read(key).result()
        if r.state != "value":
            raise self._missing(key, "no such file")
        try:  # a zip: each array's CRC-32 is checked as it is read
            with np.load(io.BytesIO(r.value)) as z:
                return {k: z[k] for k in z.files}
        except (zipfile.BadZipFile, ValueError, EOFError) as e:
            raise CheckpointError(f"{self.url}{key}: damaged ({e})") from None

    # ------------------------------------------------------------------ commit
    def wait(self, durable: bool = False) -> None:
        """Block until every background write has finished (re-raising its error); `durable`:
        and until the partitions written since the last commit are on disk (see _sync_pending)."""
        for f in list(self._futures.values()) + self._other_futures:
            f.result()
        self._other_futures.clear()
        if durable:
            self._sync_pending()

    def commit(self, progress: dict[str, Any], extra: dict[str, Any] | None = None) -> int:
        """Make everything written since the last commit current, atomically. Returns the version.
        CheckpointError (and nothing committed) if this process no longer owns the location."""
        self._claim()
        self.wait(durable=True)
        if self.writer is not False:
            self.owner_lock.check()
        tables = {t: dict(p) for t, p in (self.manifest or {}).get("tables", {}).items()}
        for etype, parts in self._pending_tables.items():
            tables.setdefault(etype, {}).update(parts)
        named = {k for parts in tables.values() for k in parts.values()}
        sums = {k: v for k, v in {**(self.manifest or {}).get("checksums", {}),
                                  **self._pending_sums}.items() if k in named}
        manifest = {
            "format": FORMAT,
            "version": self.next_version,
            "tables": tables,
            "params": self._pending_params or (self.manifest or {}).get("params"),
            "progress": progress,
            "checksums": sums,
            "verified_since": (self.manifest or {}).get("verified_since", self.next_version),
            "time": time.time(),
            **(extra or {}),
        }
        self._write_manifest(MANIFEST, manifest)
        self.manifest, self.version = manifest, manifest["version"]
        self._pending_tables.clear()
        self._pending_sums.clear()
        self._pending_params = None
        self._futures.clear()
        self.collect_garbage()
        return self.version

    def _sync_pending(self) -> None:
        """fsync the partitions written since the last commit (kv.fsync_tree), so the manifest
        never points at data a power loss could take."""
        if kv.is_local(self.url):
            kv.fsync_tree(kv.local_path(self.url),
                          [key for parts in self._pending_tables.values() for key in parts.values()])

    def snapshot(self, name: str) -> None:
        """Preserve the current manifest (and so the data it names) as snapshots/{name}.json."""
        if self.manifest is None:
            raise CheckpointError("nothing committed to snapshot")
        self._claim()
        self._write_manifest(f"snapshots/{name}.json", self.manifest)

    def collect_garbage(self) -> None:
        """Delete data of committed-or-older versions that no manifest names (crash leftovers):
        only by the lock holder, never data of a version newer than the committed one."""
        if self._futures or self._pending_tables or self.writer is False:
            return
        self._claim()
        garbage.collect(self.kv, self.url, self.manifest, self.version)

    def close(self) -> None:
        try:
            self.wait()
            self._pool.shutdown(wait=True)
        finally:
            self.owner_lock.release()
