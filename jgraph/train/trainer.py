"""The training loop: epochs of passes, passes of rounds of buckets, partitions swapped through
the checkpoint store.

A pass goes over every bucket (one edge chunk of each) in rounds that the bucket scheduler
(jgraph/train/scheduler.py) lays out: for this process's bucket of a round, the working table
(tables.py) writes evicted partitions back in the background and puts the bucket's partitions into
their slots (their reads were started while the previous bucket trained, as were its edge
batches), the block step (blocks.py) runs over the bucket's batches, the divergence guard
(guard.py) checks the result, and the scheduler ends the round (commits, parameter averaging).
Checkpoints (checkpointing.py) are committed as the scheduler says and at every epoch's end; a
resumed run continues after the last committed round.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import jax
import numpy as np

from jgraph.assembly import build_model, partition_layout
from jgraph.config import DistributedConfig, TrainConfig
from jgraph.core.step import Tables, init_state
from jgraph.data.dataset import Dataset
from jgraph.memory import return_large_frees
from jgraph.plan.buckets import bucket_order
from jgraph.plan.partition import centering_shifts
from jgraph.plan.residency import Swap, plan
from jgraph.readout import assemble
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.storage.edges import EdgeBucketStore
from jgraph.train.blocks import BucketTrainer, training_edges
from jgraph.train.checkpointing import Checkpointer
from jgraph.train.cluster import Cluster
from jgraph.train.featurized import deriver
from jgraph.train.guard import DivergenceGuard
from jgraph.train.scheduler import make_scheduler
from jgraph.train.tables import WorkingTable

log = logging.getLogger("jgraph")
# per epoch: partitions read into a slot / given first-touch rows / written back / not written
# back (clean), and the bytes of partitions read and written
READ_AHEAD_BUCKETS = 16  # how far ahead partition reads may start (the plan is known)
READS_IN_FLIGHT = 2  # partition reads started ahead at most at once (each holds a host copy)
IO_COUNTS = ("partition_loads", "partition_inits", "partition_writes", "partition_writes_skipped",
             "partition_read_bytes", "partition_write_bytes")


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
        **{k: int(tot.get(k, 0)) for k in IO_COUNTS},
        "io_hidden_seconds": max(tot.get("io_busy_seconds", 0.0) - tot.get("io_wait_seconds", 0.0), 0.0),
    }


def next_epoch_over(elapsed: float, walls: list[float], budget: float) -> bool:
    """training.time_budget_minutes: True when one more epoch, as long as the mean of the epochs
    so far (`walls`, seconds; none yet: it is started), would end past `budget` seconds of training
    (`elapsed` already spent)."""
    return bool(walls) and elapsed + sum(walls) / len(walls) > budget


class Trainer:
    """Trains one run's tables bucket by bucket; see the module docstring. `state` (TrainState)
    and `tables` (the working table's arrays) are what the jitted step updates."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, store: CheckpointStore,
                 on_epoch: Callable[[int, dict], None] | None = None,
                 on_bucket: Callable[[dict], None] | None = None,
                 cluster: Cluster | None = None,
                 after_epoch: Callable[[int], bool] | None = None) -> None:
        self.cfg, self.ds, self.store = cfg, ds, store
        self.cluster = cluster or Cluster(DistributedConfig(num_processes=1, process_id=0))
        self.on_epoch, self.on_bucket = on_epoch, on_bucket
        self.after_epoch = after_epoch  # called once an epoch is committed; True: stop training
        self.model = build_model(cfg, ds)
        self.layout = partition_layout(cfg, ds)
        if self.layout.num_partitions > 1 and not cfg.storage.prefetch_partitions:
            # least memory: freed swap buffers go back to the system at once (costs about 10% of
            # edges/s in page faults, so only in this mode; prefetching runs trim after each swap)
            return_large_frees()
        self.edges = training_edges(cfg, ds, self.layout)
        self.num_train_edges = sum(self.edges.count((i, j)) for i in range(self.edges.n_lhs)
                                   for j in range(self.edges.n_rhs))
        self.buckets = BucketTrainer(cfg, ds, self.layout, self.model, self.num_train_edges)
        self.train_block, self.group_of_rel = self.buckets.train_block, self.buckets.group_of_rel
        self.chunk, self.chunks_per_batch = self.buckets.chunk, self.buckets.chunks_per_batch
        self.table = WorkingTable(cfg, self.layout, store)
        self.checkpoint = Checkpointer(cfg, ds, self.layout, store, self.table, self.cluster.size)
        self._derive = deriver(self.model, self.layout, ds)  # featurized types (or None)
        if self._derive is not None:
            self.checkpoint.before_commit = self._derive_rows
        self.scheduler = make_scheduler(cfg, self.layout, self.cluster, self.checkpoint, self.table)
        self.guard = DivergenceGuard(cfg.training.divergence_factor)
        # each process draws its own negatives
        o = cfg.optimizer
        self.state = init_state(self.model, cfg.training.seed * 1000 + self.cluster.rank,
                                cfg.training.rng_impl, o.relation_lr or o.lr, o.eps)
        # calibrate() keeps the table it assembled (rows [N, D] in id order, offsets [T], each
        # row's shift index [N], the fitted shifts [G, D]) for the read-out that follows, so a
        # partitioned run reads its partitions once at the end; dropped once used or on training
        self._raw_tables: tuple[jax.Array, np.ndarray, np.ndarray, np.ndarray] | None = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="jgraph-batches")
        self.budget_stop: dict[str, Any] | None = None  # set when training.time_budget_minutes stops
        self.state = self.checkpoint.restore(self.state)

    # where training stands, as the checkpoint keeps it
    progress = property(lambda self: self.checkpoint.progress)
    history = property(lambda self: self.checkpoint.history)
    part_shifts = property(lambda self: self.checkpoint.shifts)  # calibrated: type -> [P, D]

    @property
    def tables(self) -> Tables:
        return self.table.tables

    @tables.setter
    def tables(self, value: Tables) -> None:
        self.table.tables = value

    def _derive_rows(self, state) -> None:
        """Featurized types: their slots get their entities' embeddings (train/featurized.py)."""
        if self.table.resident:
            self.tables = self._derive(self.tables, state.params)

    def commit(self) -> None:
        """Commit a checkpoint of everything now (checkpointing.Checkpointer.commit)."""
        self.checkpoint.commit(self.state)

    def compile(self) -> float:
        """Compile the training step (a call that runs zero batches); returns the seconds it took."""
        self.state, self.tables, seconds = self.buckets.compile(self.state, self.tables)
        return seconds

    # ------------------------------------------------------------------ training
    def fit(self, progress_bar=None) -> list[dict[str, Any]]:
        """Train the remaining epochs; returns the per-epoch history."""
        cfg, ckpt = self.cfg, self.checkpoint
        if ckpt.progress["epoch"] < cfg.training.num_epochs:
            ckpt.shifts = {}  # fitted to rows that training is about to change
            self._raw_tables = None
        self.compile_seconds = self.compile()
        log.info("training step compiled in %.1fs", self.compile_seconds)
        self.scheduler.start(self.state)
        chunks = max(1, cfg.training.num_edge_chunks)
        budget, t_fit, walls = cfg.training.time_budget_minutes * 60.0, time.perf_counter(), []
        while ckpt.progress["epoch"] < cfg.training.num_epochs:
            epoch = ckpt.progress["epoch"]
            if budget and next_epoch_over(time.perf_counter() - t_fit, walls, budget):
                self.budget_stop = {"epochs": epoch, "minutes": (time.perf_counter() - t_fit) / 60,
                                    "budget_minutes": budget / 60}
                log.info("training.time_budget_minutes %.1f: stopping after epoch %d (%.1f min of "
                         "training; the next epoch would end past the budget)", budget / 60, epoch,
                         self.budget_stop["minutes"])
                break
            t_epoch = time.perf_counter()
            passes = []
            while ckpt.progress.get("chunk", 0) < chunks:
                chunk = ckpt.progress.get("chunk", 0)
                passes.append(self.train_pass(epoch, chunk, ckpt.progress["bucket"], progress_bar))
                ckpt.progress = {"epoch": epoch, "chunk": chunk + 1, "bucket": 0}
            stats = _merge_passes(epoch, passes)
            ckpt.history.append(stats)
            if self.on_epoch is not None:
                self.on_epoch(epoch, stats)
            ckpt.progress = {"epoch": epoch + 1, "chunk": 0, "bucket": 0}
            self.scheduler.end_epoch(self.state, epoch)
            walls.append(time.perf_counter() - t_epoch)
            if self.after_epoch is not None and self.after_epoch(epoch):  # early stopping
                break
        self.table.buffers.clear()  # evaluation and export need no swap buffers
        return ckpt.history

    def _plan(self, bucket, resident: dict, future: list) -> Swap | None:
        """The swap into `bucket` from `resident`; `future`: this process's buckets after it
        (None: idle rounds), for the eviction choice with more than two slots."""
        if bucket is None:
            return None
        return plan(self.layout, [bucket], resident, [b for b in future if b is not None])[0][0]

    def _read_ahead(self, reads: dict, nxt: Swap, resident: dict, future: list) -> None:
        """Start the reads of the loads planned in the next READ_AHEAD_BUCKETS buckets after `nxt`
        (`future`: this process's buckets after it) while fewer than READS_IN_FLIGHT reads are
        pending, so a partition arrives while earlier buckets train; never of a partition
        evicted before its load (the store would be read before that write-back)."""
        future = [b for b in future if b is not None]
        window, rest = future[:READ_AHEAD_BUCKETS], future[READ_AHEAD_BUCKETS:]
        if len(reads) >= READS_IN_FLIGHT or not window:
            return
        steps, _ = plan(self.layout, [nxt.bucket, *window], resident, rest)
        evicted = set()
        for step in steps:
            evicted.update((t, part) for t, part, _ in step.evict)
            for t, part, _ in step.load:
                if (t, part) in reads or (t, part) in evicted:
                    continue
                if len(reads) >= READS_IN_FLIGHT:
                    return
                reads[(t, part)] = self.table.read(t, part)

    def _io_counts(self) -> dict[str, float]:
        return {**self.table.counts, "partition_read_bytes": self.store.bytes_read,
                "partition_write_bytes": self.store.bytes_written}

    def train_pass(self, epoch: int, chunk: int, first: int, bar=None) -> dict[str, Any]:
        """One pass over every bucket (edge chunk `chunk` of each), from round `first`: this
        process's bucket of each round, as the scheduler lays them out."""
        cfg, table, sched = self.cfg, self.table, self.scheduler
        chunks = max(1, cfg.training.num_edge_chunks)
        seed = epoch * chunks + chunk
        order = bucket_order(self.edges.n_lhs, self.edges.n_rhs, cfg.storage.bucket_order,
                             cfg.training.seed, seed, max(tp.slots for tp in self.layout.types))
        rounds = sched.rounds(order)
        mine = [r[sched.rank] for r in rounds] + [None]
        totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}
        io_wait = train_time = 0.0
        bytes0, busy0, counts0 = self._io_bytes(), self._io_busy(), self._io_counts()
        t_pass = time.perf_counter()
        reads: dict[tuple[int, int], Future] = {}

        def prepare(step: Swap) -> Future:  # edges read + batches built off the critical path
            edges = self.edges.read(step.bucket, chunk, chunks)
            return self._pool.submit(self.buckets.batches, step, edges, seed)

        if first < len(rounds):
            table.resident = sched.keep(table.resident, mine[first])
        step = self._plan(mine[first] if first < len(rounds) else None, table.resident, mine[first + 1 :])
        pending = prepare(step) if step is not None else None
        for k in range(first, len(rounds)):
            t0 = time.perf_counter()
            b0 = self._io_bytes()
            stats, dt, wait, batches = None, 0.0, 0.0, None
            if step is not None:
                table.enter(step, reads, self._pool.submit)
                batches, layout = pending.result()
                wait = time.perf_counter() - t0
            # the next bucket's edges (and, alone, its partitions) load while this one trains
            after = sched.keep(table.resident, mine[k + 1])
            nxt = self._plan(mine[k + 1], after, mine[k + 2 :])
            pending = prepare(nxt) if nxt is not None else None
            if nxt is not None and sched.prefetch:
                for t, part, _ in nxt.load:
                    if (t, part) not in reads:  # (a read started ahead is kept)
                        reads[(t, part)] = table.read(t, part)
                self._read_ahead(reads, nxt, after, mine[k + 2 :])
            if step is not None:
                t1 = time.perf_counter()
                where = f"epoch {epoch + 1}, bucket {step.bucket}"
                kept = f"the last committed checkpoint, version {self.store.version}, is kept"
                self.state, self.tables, stats = self.buckets.train(
                    self.state, self.tables, batches, layout, bar, where, kept)
                self.guard.check(stats["loss"] / max(stats["count"], 1.0), self.tables.emb, where, kept)
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
                    "evictions": len(step.evict), "process": sched.rank,
                })
            tc = time.perf_counter()
            self.checkpoint.progress = {"epoch": epoch, "chunk": chunk, "bucket": done}
            self.state = sched.end_round(self.state, rounds[k], k, epoch, chunk, done == len(rounds))
            table.resident = after
            io_wait += wait + time.perf_counter() - tc  # a commit waits for its writes
            step = nxt
        wall = time.perf_counter() - t_pass
        return sched.pass_totals({
            "loss": totals["loss"], "reg": totals["reg"], "count": totals["count"],
            "train_seconds": train_time, "wall_seconds": wall, "io_wait_seconds": io_wait,
            "io_busy_seconds": self._io_busy() - busy0, "io_bytes": float(self._io_bytes() - bytes0),
            **{k: float(v - counts0[k]) for k, v in self._io_counts().items()}})

    def _io_busy(self) -> float:
        return self.store.io_seconds + getattr(self.edges, "io_seconds", 0.0)

    def _io_bytes(self) -> int:
        return self.store.bytes_read + self.store.bytes_written + getattr(self.edges, "bytes_read", 0)

    # ------------------------------------------------------------------ after training
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
        skip = self.scheduler.skip_calibration or (
            None if "train" in self.ds.splits else "the training edges are not in memory (prepared dataset)")
        if skip:
            log.info("partition calibration skipped: %s", skip)
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
        self.checkpoint.shifts = {t: shifts[base[t] : base[t + 1]] for t in parted}
        self._raw_tables = (emb, offsets, shift_of_row, shifts)
        return {"loss_before": before, "loss_after": after, "seconds": time.perf_counter() - t0}

    def full_tables(self, read_out: bool = True) -> tuple[jax.Array, np.ndarray]:
        """Every entity's row in id order: (emb [sum of counts, D], start row of each type [T]).

        Resident partitions come from the working table, the others from the checkpoint store
        (partitions never trained yet: their initial rows); readout.assemble puts them in order.
        read_out and model.center_partitions (the default): shifted per partition, by the calibrated
        shifts or else with each partition's mean row moved to its type's mean."""
        if self._derive is not None:
            self._derive_rows(self.state)
        if read_out and self._raw_tables is not None:  # right after calibrate(): shift its table
            emb, offsets, shift_of_row, shifts = self._raw_tables
            self._raw_tables = None
            return emb + jax.numpy.asarray(shifts)[jax.numpy.asarray(shift_of_row)], offsets
        return assemble(self.layout, self.cfg.model.dimension, self.table.partition_rows,
                        read_out and self.cfg.model.center_partitions, self.checkpoint.shifts)

    def close(self) -> None:
        self._raw_tables = None
        self._pool.shutdown(wait=True)
        self.store.close()
        if isinstance(self.edges, EdgeBucketStore):
            self.edges.close()
