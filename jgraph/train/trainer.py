"""The training loop: epochs of buckets, partitions swapped through the checkpoint store.

For each bucket of the order: evicted partitions are written back in the background, the bucket's
partitions are put into their working-table slots (their reads were started while the previous
bucket trained, as were its edge batches), the jitted block step runs over the bucket's batches,
and a checkpoint is committed every `storage.checkpoint_every_buckets` buckets and at every
epoch's end. A resumed run continues after the last committed bucket.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.assembly import (
    build_model,
    compute_groups,
    fingerprint,
    lr_schedule,
    negative_spec,
    partition_layout,
    relation_groups,
    training_degrees,
    state_arrays,
    state_from_arrays,
)
from jgraph.config import DistributedConfig, TrainConfig, chunk_size
from jgraph.core.model import Batch, Layout
from jgraph.core.negatives import degree_table
from jgraph.core.optim import decode_rows, table_dtype
from jgraph.core.step import init_state, make_slot_ops, make_train_block, new_tables
from jgraph.data.dataset import Dataset
from jgraph.errors import TrainingDiverged
from jgraph.memory import HostBuffers, back_with_huge_pages, return_large_frees, trim
from jgraph.plan.batches import Batches, block_workers, make_batches
from jgraph.plan.buckets import BucketedEdges, assign_rounds, bucket_order, bucketize
from jgraph.plan.partition import (
    center_rows,
    centering_shifts,
    shifts_from_arrays,
    shifts_to_arrays,
)
from jgraph.plan.residency import Swap, plan
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.storage.edges import EdgeBucketStore, write_buckets
from jgraph.train.cluster import Cluster

log = logging.getLogger("jgraph")


def _merge_passes(epoch: int, passes: list[dict[str, Any]]) -> dict[str, Any]:
    """The epoch's line: per-edge loss and reg, edges/s over the epoch's wall time, IO."""
    tot = {k: sum(p[k] for p in passes) for k in passes[0]} if passes else {}
    n = max(tot.get("count", 0.0), 1.0)
    wall = max(tot.get("wall_seconds", 0.0), 1e-9)
    return {
        "epoch": epoch + 1, "loss": tot.get("loss", 0.0) / n, "reg": tot.get("reg", 0.0) / n,
        "edges": int(tot.get("count", 0)), "train_seconds": tot.get("train_seconds", 0.0),
        "wall_seconds": wall, "edges_per_second": tot.get("count", 0.0) / wall,
        "io_wait_seconds": tot.get("io_wait_seconds", 0.0),
        "io_busy_seconds": tot.get("io_busy_seconds", 0.0), "io_bytes": int(tot.get("io_bytes", 0)),
    }


class Trainer:
    """Trains one run's tables bucket by bucket; see the module docstring."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, store: CheckpointStore,
                 on_epoch: Callable[[int, dict], None] | None = None,
                 on_bucket: Callable[[dict], None] | None = None,
                 cluster: Cluster | None = None,
                 after_epoch: Callable[[int], bool] | None = None) -> None:
        self.cfg, self.ds, self.store = cfg, ds, store
        self.after_epoch = after_epoch  # called once an epoch is committed; True: stop training
        # calibrate() keeps the table it assembled (rows [N, D] in id order, offsets [T], each
        # row's shift index [N], the fitted shifts [G, D]) for the read-out that follows, so a
        # partitioned run reads its partitions once at the end; dropped once used or on training
        self._raw_tables: tuple[jax.Array, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.cluster = cluster or Cluster(DistributedConfig(num_processes=1, process_id=0))
        self.on_epoch, self.on_bucket = on_epoch, on_bucket
        self.model = build_model(cfg, ds)
        self.layout = partition_layout(cfg, ds)
        if self.layout.num_partitions > 1 and not cfg.storage.prefetch_partitions:
            # least memory: freed swap buffers go back to the system at once (costs about 10% of
            # edges/s in page faults, so only in this mode; prefetching runs trim after each swap)
            return_large_frees()
        if ds.train_buckets is not None:  # prepared dataset: edges stay in TensorStore
            self.edges: BucketedEdges | EdgeBucketStore = EdgeBucketStore(ds.train_buckets)
        else:
            tr = ds.splits["train"]
            types = self.layout.types
            self.edges = bucketize(
                tr.lhs, tr.rhs, tr.rel, tr.weight, ds.relation_types,
                [t.part_of for t in types], [t.offset_of for t in types],
                [t.num_partitions for t in types],
            )
            if cfg.storage.edge_dir:
                self.edges = self._edge_store(cfg.storage.edge_dir, self.edges)
        self.num_train_edges = sum(self.edges.count((i, j)) for i in range(self.edges.n_lhs)
                                   for j in range(self.edges.n_rhs))
        t = cfg.training
        self.chunk = chunk_size(cfg)
        self.chunks_per_batch = t.batch_size // self.chunk
        self.neg = negative_spec(cfg)
        relation_lr = cfg.optimizer.relation_lr or cfg.optimizer.lr
        k, d = self.layout.num_rows, cfg.model.dimension
        self.train_block = make_train_block(self.model, self.neg, cfg.optimizer.lr, relation_lr,
                                            cfg.optimizer.eps, k, compute_groups(cfg),
                                            t.row_update, lr_schedule(cfg, self.num_train_edges))
        self.put_slot, self.init_slot, self.get_slot = make_slot_ops(cfg.model.init_scale)
        if self.cluster.distributed:
            flat = [tp.name for tp in self.layout.types if tp.num_partitions == 1]
            if flat:
                raise ValueError(f"distributed training needs every entity type partitioned; "
                                 f"{flat} have num_partitions=1 (use about 2 partitions per process)")
        # each process draws its own negatives
        self.state = init_state(self.model, t.seed * 1000 + self.cluster.rank, t.rng_impl, relation_lr,
                                cfg.optimizer.eps)
        self.tables = new_tables(k, d, table_dtype(cfg.model.embedding_dtype))
        jax.block_until_ready(self.tables)
        for a in self.tables:  # before the first write (CPU, Linux): 2 MiB pages, fewer TLB misses
            back_with_huge_pages(a)
        self.resident: dict[tuple[int, int], int] = {}  # (type, slot) -> partition
        # host copies of partitions on their way out or in: reused, so swaps fault in no memory
        self.buffers = HostBuffers()
        self.row_dtype = jnp.dtype(cfg.model.embedding_dtype)  # of rows on the host and on disk
        self.part_shifts: dict[int, np.ndarray] = {}  # calibrated read-out shifts, type -> [P, D]
        self.progress = {"epoch": 0, "chunk": 0, "bucket": 0}
        self.history: list[dict[str, Any]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="jgraph-batches")
        self._since_commit = 0
        self._last_commit = time.perf_counter()
        self._round_start = None  # distributed: relation parameters when the round began
        self.group_of_rel = relation_groups(cfg, ds)
        self.degrees = training_degrees(cfg, ds)  # per type, for negatives.degree_fraction (or None)
        self._restore()

    def _edge_store(self, location: str, edges: BucketedEdges) -> EdgeBucketStore:
        """Bucketed edges in TensorStore (written on first use), so edges need no memory."""
        try:
            store = EdgeBucketStore(location)
        except FileNotFoundError:
            write_buckets(location, edges)
            store = EdgeBucketStore(location)
        want = [edges.count((i, j)) for i in range(edges.n_lhs) for j in range(edges.n_rhs)]
        if store.meta["counts"] != want:
            raise ValueError(f"storage.edge_dir {location}: holds other edges (bucket counts differ)")
        return store

    # ------------------------------------------------------------------ checkpoints
    def _restore(self) -> None:
        if not self.store.exists():
            if self.cfg.storage.init_path:
                from jgraph.train.warm_start import warm_start

                warm_start(self, self.cfg.storage.init_path)
            return
        m = self.store.manifest
        want = fingerprint(self.cfg, self.ds)
        if m.get("fingerprint") != want:
            raise ValueError(
                f"checkpoint {self.store.url} belongs to another model/data "
                f"({m.get('fingerprint')} != {want}); use a fresh storage.checkpoint_dir"
            )
        arrays = self.store.read_params()
        self.state = state_from_arrays(self.state, arrays)
        self.part_shifts = shifts_from_arrays(self.layout, arrays)
        self.progress = dict(m["progress"])
        self.history = list(m.get("history", []))
        log.info("resuming from %s version %d: epoch %d, bucket %d", self.store.url,
                 self.store.version, self.progress["epoch"], self.progress["bucket"])

    def commit(self) -> None:
        """Write every resident partition and the parameters, then switch the manifest to them;
        `self.progress` (epoch, edge chunk, next bucket) says where a resumed run continues."""
        for (t, slot), part in self.resident.items():
            self._write_slot(t, part, slot)
        self.store.write_params(self._params_arrays())
        self.store.commit(dict(self.progress), self._manifest_extra())
        trim()
        self._since_commit = 0
        self._last_commit = time.perf_counter()

    def _write_slot(self, t: int, part: int, slot: int) -> None:
        """Write a resident partition: from a copy in the background (prefetching), or else shard
        by shard straight from the working table, now; with the mean of its real rows."""
        tp = self.layout.types[t]
        start = self.layout.slot_start[t][slot]
        if self.cfg.storage.prefetch_partitions:
            buf = self.buffers.take((tp.capacity, self.cfg.model.dimension), self.row_dtype)
            emb, acc = self.get_slot(self.tables, start, rows=tp.capacity, out=buf)
            # reused by the next swap; a type of one partition never swaps (its copy is freed)
            done = (lambda: self.buffers.give(buf)) if tp.num_partitions > 1 else None
            self.store.write_partition(tp.name, part, emb, acc, done=done, count=tp.sizes[part])
            return
        acc = np.asarray(jax.lax.dynamic_slice_in_dim(self.tables.acc, start, tp.capacity))

        def rows(a: int, b: int) -> np.ndarray:
            return self.get_slot(self.tables, start + a, rows=b - a)[0]

        self.store.write_partition_blocks(tp.name, part, (tp.capacity, self.cfg.model.dimension),
                                          rows, acc, self.cfg.model.embedding_dtype, tp.sizes[part])

    def _params_arrays(self) -> dict[str, np.ndarray]:
        """What a checkpoint saves beside the partitions: the training state and the calibrated
        read-out shifts."""
        return state_arrays(self.state) | shifts_to_arrays(self.layout, self.part_shifts)

    # ------------------------------------------------------------------ calibration
    def calibrate(self) -> dict[str, float] | None:
        """Fit the read-out shifts of the partitioned types (jgraph/train/calibrate.py). Returns the
        loss of a fixed sample of training edges before (read-out centering) and after, and the
        seconds it took; None where it does not apply (no partitioned type,
        training.calibration_steps 0, read-out shifts off, training edges not in memory, several
        processes)."""
        from jgraph.train.calibrate import fit_partition_shifts

        types = self.layout.types
        parted = [t for t, tp in enumerate(types) if tp.num_partitions > 1]
        steps = self.cfg.training.calibration_steps
        if not (parted and steps and self.cfg.model.center_partitions):
            return None
        if "train" not in self.ds.splits or self.cluster.distributed:
            log.info("partition calibration skipped: %s", "several processes" if self.cluster.distributed
                     else "the training edges are not in memory (prepared dataset)")
            return None
        t0 = time.perf_counter()
        emb, offsets = self.full_tables(read_out=False)
        base = np.cumsum([0] + [tp.num_partitions for tp in types])
        init = np.zeros((base[-1], self.cfg.model.dimension), np.float32)
        trainable = np.zeros(base[-1], bool)
        host = np.asarray(emb)
        for t in parted:
            tp = types[t]
            init[base[t] : base[t + 1]] = centering_shifts(host[offsets[t] : offsets[t] + tp.count],
                                                           tp.members)
            trainable[base[t] : base[t + 1]] = True
        shift_of_row = np.concatenate([base[t] + tp.part_of for t, tp in enumerate(types)])
        tr = self.ds.splits["train"]
        shifts, before, after = fit_partition_shifts(
            self.model, self.state.params, emb, offsets, np.array([tp.count for tp in types]),
            shift_of_row, init, trainable, tr.lhs, tr.rel, tr.rhs, steps, self.cfg.training.seed)
        self.part_shifts = {t: shifts[base[t] : base[t + 1]] for t in parted}
        self._raw_tables = (emb, offsets, shift_of_row, shifts)
        return {"loss_before": before, "loss_after": after, "seconds": time.perf_counter() - t0}

    # ------------------------------------------------------------------ swapping
    def _enter(self, step: Swap, reads: dict[tuple[int, int], Future]) -> None:
        for t, part, slot in step.evict:
            self._write_slot(t, part, slot)
            del self.resident[(t, slot)]
        for t, part, slot in step.load:
            tp = self.layout.types[t]
            start = self.layout.slot_start[t][slot]
            fut = reads.pop((t, part), None)
            if fut is not None or self.cfg.storage.prefetch_partitions:
                data = (fut or self.store.read_partition(tp.name, part, self.buffers.take)).result()
                found = data is not None
                if found:
                    # the aligned buffer is aliased, not copied: reuse it once the put is done
                    self.tables = self.put_slot(self.tables, start, data[0], data[1])
                    jax.block_until_ready(self.tables)
                    self.buffers.give(data[0])
                del data, fut
            else:  # shard by shard into the slot: no copy of the whole partition
                streamed = self.store.read_partition_blocks(tp.name, part)
                found = streamed is not None
                if found:
                    blocks, acc = streamed
                    acc_rows = jnp.asarray(acc)
                    for a, rows in blocks:
                        self.tables = self.put_slot(self.tables, start + a, rows,
                                                    acc_rows[a : a + rows.shape[0]])
                        # wait for the copy, so queued copies never hold more than this shard
                        jax.block_until_ready(self.tables)
            if not found:  # first touch: N(0, init_scale^2), as PBG, 2 MiB of rows at a time (the
                # draws stay in cache: 1.7x faster than 8 MiB, 7x faster than a 1.6 GB slot at once)
                key = jax.random.key(hash((self.cfg.training.seed, t, part)) % (2**31))
                step_rows = max(1, (1 << 19) // self.cfg.model.dimension)
                for a in range(0, tp.capacity, step_rows):
                    self.tables = self.init_slot(self.tables, jnp.int32(start + a), key,
                                                 jnp.int32(a), rows=min(step_rows, tp.capacity - a))
            self.resident[(t, slot)] = part
        if step.evict:  # a swap: the freed IO buffers go back to the system off the critical path
            self._pool.submit(trim)
        elif step.load:  # first loads (a type of one partition: its whole table): at once, before
            trim()  # the bucket's batches take memory (in the background: +80 MiB peak at P=1)

    def _batches(self, step: Swap, edges: Future, seed: int) -> tuple[Batches, Layout]:
        layout = self.layout.layout(step.bucket, step.slot_of)
        lhs_off, rhs_off, rel, w = edges.result()
        rt = self.ds.relation_types  # [R, 2]: each relation's rows start where its types' do
        shift = (layout.lo[rt[:, 0], 0].astype(np.int64), layout.lo[rt[:, 1], 1].astype(np.int64))
        group = None if self.group_of_rel is None else self.group_of_rel[rel]
        rng = np.random.default_rng([self.cfg.training.seed, seed, *step.bucket])
        b = make_batches(lhs_off, rhs_off, rel, w, group, self.chunk, self.chunks_per_batch,
                         self.cfg.training.batches_per_dispatch, rng, shift,
                         block_workers(jax.default_backend(), len(os.sched_getaffinity(0))))
        deg = None if self.degrees is None else jnp.asarray(
            degree_table(self.layout, step.bucket, step.slot_of, self.degrees))
        return b, Layout(jnp.asarray(layout.lo), jnp.asarray(layout.n), deg)

    # ------------------------------------------------------------------ training
    def compile(self) -> float:
        """Compile the training step (a call that runs zero batches); returns the seconds it took."""
        s, c, p = self.cfg.training.batches_per_dispatch, self.chunks_per_batch, self.chunk
        block = Batch(jnp.full((s, c, p), -1, jnp.int32), jnp.full((s, c, p), -1, jnp.int32),
                      jnp.zeros((s, c, p), jnp.int32), jnp.zeros((s, c, p), jnp.float32))
        t = len(self.layout.types)
        deg = None if self.degrees is None else jnp.zeros((self.layout.num_rows + 1,), jnp.int32)
        layout = Layout(jnp.zeros((t, 2), jnp.int32), jnp.ones((t, 2), jnp.int32), deg)
        t0 = time.perf_counter()
        self.state, self.tables, stats = self.train_block(self.state, self.tables, block, jnp.int32(0),
                                                          layout)
        jax.block_until_ready(stats)
        return time.perf_counter() - t0

    def fit(self, progress_bar=None) -> list[dict[str, Any]]:
        """Train the remaining epochs; returns the per-epoch history."""
        cfg = self.cfg
        if self.progress["epoch"] < cfg.training.num_epochs:
            self.part_shifts = {}  # fitted to rows that training is about to change
            self._raw_tables = None
        self.compile_seconds = self.compile()
        log.info("training step compiled in %.1fs", self.compile_seconds)
        if self.cluster.distributed:
            self._round_start = jax.tree_util.tree_map(np.asarray, (self.state.params, self.state.opt_state))
        chunks = max(1, cfg.training.num_edge_chunks)
        while self.progress["epoch"] < cfg.training.num_epochs:
            epoch = self.progress["epoch"]
            passes = []
            while self.progress.get("chunk", 0) < chunks:
                chunk = self.progress.get("chunk", 0)
                passes.append(self.train_pass(epoch, chunk, self.progress["bucket"], progress_bar))
                self.progress = {"epoch": epoch, "chunk": chunk + 1, "bucket": 0}
            stats = _merge_passes(epoch, passes)
            self.history.append(stats)
            if self.on_epoch is not None:
                self.on_epoch(epoch, stats)
            self.progress = {"epoch": epoch + 1, "chunk": 0, "bucket": 0}
            if self.cluster.distributed:  # partitions were committed by the rounds
                self._commit_shared(f"epoch{epoch}", [])
            elif cfg.storage.save:
                self.commit()
            every = cfg.storage.checkpoint_preservation_interval
            if (cfg.storage.save or self.cluster.distributed) and every and (epoch + 1) % every == 0 \
                    and self.cluster.primary:
                self.store.snapshot(f"epoch_{epoch + 1}")
            if self.after_epoch is not None and self.after_epoch(epoch):  # early stopping
                break
        self.buffers.clear()  # evaluation and export need no swap buffers
        return self.history

    def _uses(self, bucket) -> set[tuple[int, int]]:
        """The (type, partition) pairs a bucket trains (partitioned types only)."""
        return {(t, p) for t, tp in enumerate(self.layout.types) if tp.num_partitions > 1
                for p in self.layout.bucket_parts(t, bucket)}

    def _plan_step(self, bucket, resident: dict) -> tuple[Swap | None, dict]:
        if bucket is None:
            return None, resident
        steps, after = plan(self.layout, [bucket], resident)
        return steps[0], after

    def _keep_only(self, resident: dict, bucket) -> dict:
        """Distributed: after a round, keep only partitions this process's next bucket needs (the
        rest may be trained by another process next); everything was committed already."""
        need = self._uses(bucket) if bucket is not None else set()
        return {(t, s): p for (t, s), p in resident.items()
                if self.layout.types[t].num_partitions == 1 or (t, p) in need}

    def train_pass(self, epoch: int, chunk: int, first: int, bar=None) -> dict[str, Any]:
        """One pass over every bucket (edge chunk `chunk` of each), from round `first`.

        Buckets go in rounds: one bucket per round in a single process; with N processes, up to N
        buckets sharing no partition, one per process, then a barrier and one commit."""
        cfg = self.cfg
        chunks = max(1, cfg.training.num_edge_chunks)
        seed = epoch * chunks + chunk
        order = bucket_order(self.edges.n_lhs, self.edges.n_rhs, cfg.storage.bucket_order,
                             cfg.training.seed, seed)
        rounds = assign_rounds(order, self.cluster.size, self._uses)
        mine = [r[self.cluster.rank] for r in rounds] + [None]
        dist = self.cluster.distributed
        totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}
        io_wait = train_time = 0.0
        bytes0, busy0 = self._io_bytes(), self._io_busy()
        t_pass = time.perf_counter()
        reads: dict[tuple[int, int], Future] = {}

        def prepare(step: Swap) -> Future:  # edges read + batches built off the critical path
            edges = self.edges.read(step.bucket, chunk, chunks)
            return self._pool.submit(self._batches, step, edges, seed)

        if dist and first < len(rounds):
            self.resident = self._keep_only(self.resident, mine[first])
        step, _ = self._plan_step(mine[first] if first < len(rounds) else None, self.resident)
        pending = prepare(step) if step is not None else None
        for k in range(first, len(rounds)):
            t0 = time.perf_counter()
            b0 = self._io_bytes()
            stats, dt, wait, batches = None, 0.0, 0.0, None
            if step is not None:
                self._enter(step, reads)
                batches, layout = pending.result()
                wait = time.perf_counter() - t0
            # the next bucket's edges (and, alone, its partitions) load while this one trains
            after = self._keep_only(self.resident, mine[k + 1]) if dist else self.resident
            nxt, _ = self._plan_step(mine[k + 1], after)
            pending = prepare(nxt) if nxt is not None else None
            if nxt is not None and not dist and cfg.storage.prefetch_partitions:
                # (distributed: partitions may change hands first)
                for t, part, _ in nxt.load:
                    reads[(t, part)] = self.store.read_partition(self.layout.types[t].name, part,
                                                                 self.buffers.take)
            if step is not None:
                t1 = time.perf_counter()
                stats = self._train_bucket(batches, layout, bar, epoch, step.bucket)
                dt = time.perf_counter() - t1
                train_time += dt
                for key in totals:
                    totals[key] += stats[key]
            done = k + 1
            if self.on_bucket is not None and step is not None:
                self.on_bucket({
                    "epoch": epoch + 1, "chunk": chunk, "index": done, "of": len(rounds),
                    "lhs": step.bucket[0], "rhs": step.bucket[1], "edges": int(stats["count"]),
                    "loss": stats["loss"] / max(stats["count"], 1.0), "train_seconds": dt,
                    "edges_per_second": stats["count"] / max(dt, 1e-9), "io_wait_seconds": wait,
                    "io_bytes": self._io_bytes() - b0, "loads": len(step.load),
                    "evictions": len(step.evict), "process": self.cluster.rank,
                })
            tc = time.perf_counter()
            every = cfg.storage.checkpoint_every_buckets
            self._since_commit += 1
            if dist:
                self.progress = {"epoch": epoch, "chunk": chunk, "bucket": done}
                self._end_round(rounds[k], k, epoch, chunk)
                self.resident = after
            elif cfg.storage.save and done < len(rounds) and (
                    (every and self._since_commit >= every)
                    or (cfg.storage.checkpoint_every_seconds
                        and time.perf_counter() - self._last_commit >= cfg.storage.checkpoint_every_seconds)):
                self.progress = {"epoch": epoch, "chunk": chunk, "bucket": done}
                self.commit()
            io_wait += wait + time.perf_counter() - tc  # a commit waits for its writes
            step = nxt
        wall = time.perf_counter() - t_pass
        out = {"loss": totals["loss"], "reg": totals["reg"], "count": totals["count"],
               "train_seconds": train_time, "wall_seconds": wall, "io_wait_seconds": io_wait,
               "io_busy_seconds": self._io_busy() - busy0, "io_bytes": float(self._io_bytes() - bytes0)}
        if dist:  # the epoch's line counts every process's edges; times are this process's
            keys = ("loss", "reg", "count", "io_bytes")
            summed = self.cluster.allsum({k: np.float64(out[k]) for k in keys})
            out.update({k: float(v) for k, v in summed.items()})
        return out

    def _end_round(self, buckets: list, k: int, epoch: int, chunk: int) -> None:
        """Distributed round end: average relation-parameter changes, write this process's
        partitions, then one commit for every process's partitions (see _commit_shared)."""
        self._sync_params()
        mine = buckets[self.cluster.rank]
        if mine is not None:
            for (t, slot), part in self.resident.items():
                if (t, part) in self._uses(mine):
                    self._write_slot(t, part, slot)
        others = [tp for r, b in enumerate(buckets) if b is not None and r != self.cluster.rank
                  for tp in self._uses(b)]
        self._commit_shared(f"e{epoch}c{chunk}r{k}", others)

    def _commit_shared(self, tag: str, others: list[tuple[int, int]]) -> None:
        """Barrier (every process's writes are done), process 0 commits its own and the `others`
        partitions in one switch, barrier, the other processes re-read the manifest."""
        self.store.wait(durable=True)  # each process makes its own writes durable
        self.cluster.barrier(f"written-{tag}")
        if self.cluster.primary:
            for t, part in others:
                self.store.add_pending(self.layout.types[t].name, part)
            self.store.write_params(self._params_arrays())
            self.store.commit(dict(self.progress), self._manifest_extra())
        self.cluster.barrier(f"committed-{tag}")
        if not self.cluster.primary:
            self.store.refresh()
        self._since_commit = 0

    def _manifest_extra(self) -> dict[str, Any]:
        return {"fingerprint": fingerprint(self.cfg, self.ds), "history": self.history,
                "config": asdict(self.cfg), "processes": self.cluster.size}

    def _sync_params(self) -> None:
        """Every process applies the mean of all processes' relation-parameter (and Adagrad
        accumulator) changes since the last round: parameter averaging at round boundaries."""
        cur = jax.tree_util.tree_map(np.asarray, (self.state.params, self.state.opt_state))
        base = self._round_start
        delta = jax.tree_util.tree_map(lambda a, b: a - b, cur, base)
        total = self.cluster.allsum(delta)
        n = self.cluster.size
        new = jax.tree_util.tree_map(lambda b, d: jnp.asarray(b + d / n), base, total)
        self.state = self.state._replace(params=new[0], opt_state=new[1])
        self._round_start = jax.tree_util.tree_map(np.asarray, new)

    def _io_busy(self) -> float:
        return self.store.io_seconds + getattr(self.edges, "io_seconds", 0.0)

    def _io_bytes(self) -> int:
        return self.store.bytes_read + self.store.bytes_written + getattr(self.edges, "bytes_read", 0)

    def _train_bucket(self, batches: Batches, layout: Layout, bar, epoch: int, bucket) -> dict:
        s = self.cfg.training.batches_per_dispatch
        every = max(1, self.cfg.training.log_every_dispatches)
        pending: list[dict] = []
        totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}

        def pull() -> None:
            for st in jax.device_get(pending):
                if st["nonfinite"] > 0:
                    raise TrainingDiverged(
                        f"non-finite loss in epoch {epoch + 1}, bucket {bucket}; stopped without "
                        f"saving (the last committed checkpoint, version {self.store.version}, is "
                        f"kept). Lower optimizer.lr or check the data weights."
                    )
                for key in totals:
                    totals[key] += float(st[key])
                if bar is not None:
                    bar.update(int(st["count"]))
            pending.clear()

        for i in range(batches.num_blocks(s)):
            arrays, n = batches.block(i, s)
            block = Batch(*jax.device_put(arrays))  # a transfer, not a computation queued behind the step
            self.state, self.tables, stats = self.train_block(
                self.state, self.tables, block, jnp.int32(n), layout)
            pending.append(stats)
            if len(pending) >= every:
                pull()
        pull()
        return totals

    # ------------------------------------------------------------------ results
    def full_tables(self, read_out: bool = True) -> tuple[jax.Array, np.ndarray]:
        """Every entity's row in id order: (emb [sum of counts, D], start row of each type [T]).

        Resident partitions come from the working table, the others from the checkpoint store
        (partitions never trained yet get their initial random rows). read_out and
        model.center_partitions (the default): shifted per partition, by the calibrated shifts or
        else with each partition's mean row moved to its type's mean (partition_shifts)."""
        if read_out and self._raw_tables is not None:  # right after calibrate(): shift its table
            emb, offsets, shift_of_row, shifts = self._raw_tables
            self._raw_tables = None
            return emb + jnp.asarray(shifts)[jnp.asarray(shift_of_row)], offsets
        parts, offsets, off = [], [], 0
        d = self.cfg.model.dimension
        for t, tp in enumerate(self.layout.types):
            offsets.append(off)
            off += tp.count
            here = {p: s for (tt, s), p in self.resident.items() if tt == t}
            if tp.num_partitions == 1 and 0 in here:
                start = self.layout.slot_start[t][here[0]]
                parts.append(decode_rows(self.tables.emb[start : start + tp.count]))
                continue
            full = np.zeros((tp.count, d), np.float32)
            for p in range(tp.num_partitions):
                if p in here:
                    start = self.layout.slot_start[t][here[p]]
                    rows = np.asarray(decode_rows(self.tables.emb[start : start + tp.sizes[p]]))
                else:
                    data = self.store.read_partition(tp.name, p).result()
                    if data is None:
                        rng = np.random.default_rng([self.cfg.training.seed, t, p])
                        rows = self.cfg.model.init_scale * rng.standard_normal((tp.sizes[p], d))
                    else:
                        rows = data[0][: tp.sizes[p]]
                full[tp.members[p]] = rows
            if read_out and self.cfg.model.center_partitions and tp.num_partitions > 1:
                center_rows(full, tp.members, self.part_shifts.get(t))
            parts.append(jnp.asarray(full))
        return jnp.concatenate(parts) if len(parts) > 1 else parts[0], np.array(offsets, np.int64)

    def close(self) -> None:
        self._raw_tables = None
        self._pool.shutdown(wait=True)
        self.store.close()
        if isinstance(self.edges, EdgeBucketStore):
            self.edges.close()
