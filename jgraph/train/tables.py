"""The working table: the device rows of the resident partitions, in slots, and the swaps that
move partitions between it and the checkpoint store.

Each entity type has slots (`PartitionLayout.slot_start`: the partition buffer, B slots per
partitioned type); `resident` says which partition each holds. A swap (`plan.residency.Swap`) writes
the evicted partitions back and loads the needed ones: from reads started while the previous bucket
trained (prefetching), or shard by shard straight into the slot; a partition never written before
gets its first-touch rows (`initial_rows`, the only way rows are initialised). A partition no bucket
has trained since it was loaded or last written is clean: its write-back is skipped (the store
holds the same rows). `counts` keeps the partition IO for the epoch's line.

Shapes: K rows in the working table, D dimension, M rows of a slot (a type's partition capacity).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.config import TrainConfig
from jgraph.core.features import feature_type_name
from jgraph.core.optim import decode_rows, table_dtype
from jgraph.core.step import make_slot_ops, new_tables
from jgraph.memory import HostBuffers, back_with_huge_pages, trim
from jgraph.plan.partition import PartitionLayout
from jgraph.plan.residency import Swap
from jgraph.readout import init_block_rows, init_key, initial_rows
from jgraph.storage.checkpoint import CheckpointStore

Key = tuple[int, int]  # (type index, slot) in `resident`; (type index, partition) in reads
WRITES_IN_FLIGHT = 2  # partition copies being written back at most (memory.IN_FLIGHT counts them)


class WorkingTable:
    """The working table (`tables`: emb [K, D], acc [K]) and which partition each slot holds."""

    def __init__(self, cfg: TrainConfig, layout: PartitionLayout, store: CheckpointStore) -> None:
        self.cfg, self.layout, self.store = cfg, layout, store
        self.put_slot, self.init_slot, self.get_slot = make_slot_ops(cfg.model.init_scale)
        self.tables = new_tables(layout.num_rows, cfg.model.dimension,
                                 table_dtype(cfg.model.embedding_dtype))
        jax.block_until_ready(self.tables)
        for a in self.tables:  # before the first write (CPU, Linux): 2 MiB pages, fewer TLB misses
            back_with_huge_pages(a)
        self.resident: dict[Key, int] = {}  # (type, slot) -> partition
        # host copies of partitions on their way out or in: reused, so swaps fault in no memory
        self.buffers = HostBuffers()
        self.row_dtype = jnp.dtype(cfg.model.embedding_dtype)  # of rows on the host and on disk
        self.dirty: set[tuple[int, int]] = set()  # (type, partition) changed since loaded/written
        frozen = [*cfg.training.frozen_types, *(feature_type_name(t) for t in cfg.training.frozen_types)]
        self.frozen = {layout.index[t] for t in frozen if t in layout.index}  # type indices
        self.counts = {"partition_loads": 0, "partition_inits": 0, "partition_writes": 0,
                       "partition_writes_skipped": 0}
        self._writing = threading.BoundedSemaphore(WRITES_IN_FLIGHT)

    # ------------------------------------------------------------------ writing back
    def write(self, t: int, part: int, slot: int) -> None:
        """Write a resident partition: from a copy in the background (prefetching), or else shard
        by shard straight from the working table, now; with the mean of its real rows."""
        tp = self.layout.types[t]
        if (t, part) not in self.dirty and self.store.has_partition(tp.name, part):
            self.counts["partition_writes_skipped"] += 1  # clean: the store has these rows
            return
        self.dirty.discard((t, part))
        self.counts["partition_writes"] += 1
        start = self.layout.slot_start[t][slot]
        d = self.cfg.model.dimension
        if self.cfg.storage.prefetch_partitions:
            self._writing.acquire()  # no copy is made while WRITES_IN_FLIGHT are being written
            buf = self.buffers.take((tp.capacity, d), self.row_dtype)
            emb, acc = self.get_slot(self.tables, start, rows=tp.capacity, out=buf)

            def done() -> None:  # the copy is reused by the next swap; a type of one partition
                if tp.num_partitions > 1:  # never swaps (its copy is freed)
                    self.buffers.give(buf)
                self._writing.release()

            self.store.write_partition(tp.name, part, emb, acc, done=done, count=tp.sizes[part])
            return
        acc = np.asarray(jax.lax.dynamic_slice_in_dim(self.tables.acc, start, tp.capacity))

        def rows(a: int, b: int) -> np.ndarray:
            return self.get_slot(self.tables, start + a, rows=b - a)[0]

        self.store.write_partition_blocks(tp.name, part, (tp.capacity, d), rows, acc,
                                          self.cfg.model.embedding_dtype, tp.sizes[part])

    def write_resident(self, keep: Callable[[int, int], bool] = lambda t, part: True) -> None:
        """Write every resident partition (type t, partition part) that `keep` accepts."""
        for (t, slot), part in self.resident.items():
            if keep(t, part):
                self.write(t, part, slot)

    # ------------------------------------------------------------------ swapping
    def read(self, t: int, part: int) -> Future:
        """Start reading a stored partition into a host buffer (see CheckpointStore.read_partition)."""
        return self.store.read_partition(self.layout.types[t].name, part, self.buffers.take)

    def enter(self, swap: Swap, reads: dict[tuple[int, int], Future],
              background: Callable[[Callable[[], Any]], Any]) -> None:
        """Execute a swap: write back its evictions, then load its partitions (reads started by
        `prefetch` are taken out of `reads`). `background(fn)` runs fn off the critical path."""
        for t, part, slot in swap.evict:
            self.write(t, part, slot)
            del self.resident[(t, slot)]
        for t, part, slot in swap.load:
            if self._load(t, part, self.layout.slot_start[t][slot], reads.pop((t, part), None)):
                self.counts["partition_loads"] += 1
            else:
                self._init(t, part, self.layout.slot_start[t][slot])
                self.counts["partition_inits"] += 1
            self.resident[(t, slot)] = part
        # the bucket trains these (conservatively: an empty bucket's too)
        # (a frozen type's partitions never change: training.frozen_types, core/frozen.py)
        self.dirty.update((t, p) for t in range(len(self.layout.types)) if t not in self.frozen
                          for p in self.layout.bucket_parts(t, swap.bucket))
        if swap.evict:  # a swap: the freed IO buffers go back to the system off the critical path
            background(trim)
        elif swap.load:  # first loads (a type of one partition: its whole table): at once, before
            trim()  # the bucket's batches take memory (in the background: +80 MiB peak at P=1)

    def _load(self, t: int, part: int, start: int, read: Future | None) -> bool:
        """Put a stored partition into the slot at row `start`; False if it was never written."""
        tp = self.layout.types[t]
        if read is not None or self.cfg.storage.prefetch_partitions:
            data = (read or self.store.read_partition(tp.name, part, self.buffers.take)).result()
            if data is None:
                return False
            # the aligned buffer is aliased, not copied: reuse it once the put is done
            self.tables = self.put_slot(self.tables, start, data[0], data[1])
            jax.block_until_ready(self.tables)
            self.buffers.give(data[0])
            return True
        streamed = self.store.read_partition_blocks(tp.name, part)  # no copy of the whole partition
        if streamed is None:
            return False
        blocks, acc = streamed
        acc_rows = jnp.asarray(acc)
        for a, rows in blocks:
            self.tables = self.put_slot(self.tables, start + a, rows, acc_rows[a : a + rows.shape[0]])
            # wait for the copy, so queued copies never hold more than this shard
            jax.block_until_ready(self.tables)
        return True

    def _init(self, t: int, part: int, start: int) -> None:
        """First touch: the slot gets `initial_rows`, drawn on the device block by block."""
        capacity = self.layout.types[t].capacity
        key = init_key(self.cfg.training.seed, t, part)
        step = init_block_rows(self.cfg.model.dimension)
        for a in range(0, capacity, step):
            self.tables = self.init_slot(self.tables, jnp.int32(start + a), key, jnp.int32(a),
                                         rows=min(step, capacity - a))

    # ------------------------------------------------------------------ reading out
    def partition_rows(self, t: int, part: int) -> Any:
        """A partition's rows now, [sizes[part], D] float32: from its slot if resident (a type of
        one partition: on the device, uncopied), else as stored, else its `initial_rows`."""
        tp = self.layout.types[t]
        slot = next((s for (tt, s), p in self.resident.items() if tt == t and p == part), None)
        if slot is not None:
            start = self.layout.slot_start[t][slot]
            rows = decode_rows(self.tables.emb[start : start + tp.sizes[part]])
            return rows if tp.num_partitions == 1 else np.asarray(rows)
        data = self.store.read_partition(tp.name, part).result()
        if data is not None:
            return data[0][: tp.sizes[part]]
        return initial_rows(self.cfg, t, part, tp.capacity)[: tp.sizes[part]]
