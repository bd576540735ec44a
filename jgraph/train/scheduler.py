"""Bucket schedulers: which bucket this process trains in each round of a pass, what stays
resident after a round, and what happens at a round's and an epoch's end (as PBG's bucket
scheduler does for its trainers).

- `LocalScheduler` (one process): a round is one bucket; partitions stay resident until a swap
  evicts them; the next bucket's partitions are read while this one trains; a checkpoint is
  committed every storage.checkpoint_every_buckets rounds / checkpoint_every_seconds and at every
  epoch's end (storage.save).
- `DistributedScheduler` (N processes, jax.distributed): a round is up to N buckets sharing no
  partition, one per process; at its end the relation-parameter changes are averaged, every process
  writes the partitions it trained, and process 0 commits them all in one version; a process keeps
  only the partitions its next bucket needs (another may train the rest next).

Buckets are (lhs partition, rhs partition) pairs; `uses(bucket)` the (type, partition) pairs of the
partitioned types it trains.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.config import TrainConfig
from jgraph.core.step import TrainState
from jgraph.plan.buckets import Bucket
from jgraph.plan.partition import PartitionLayout
from jgraph.plan.rounds import assign_rounds
from jgraph.train.checkpointing import Checkpointer
from jgraph.train.cluster import Cluster
from jgraph.train.tables import WorkingTable

Uses = Callable[[Bucket], set[tuple[int, int]]]


class BucketScheduler:
    """The interface (and what both schedulers share)."""

    prefetch = False  # may the next bucket's partitions be read while this one trains
    skip_calibration: str | None = None  # why calibration cannot run here (None: it can)

    def __init__(self, cfg: TrainConfig, layout: PartitionLayout, cluster: Cluster,
                 checkpoint: Checkpointer, table: WorkingTable) -> None:
        self.cfg, self.layout, self.cluster = cfg, layout, cluster
        self.checkpoint, self.table = checkpoint, table
        self.rank = cluster.rank

    def uses(self, bucket: Bucket) -> set[tuple[int, int]]:
        """The (type, partition) pairs a bucket trains (partitioned types only)."""
        return {(t, p) for t, tp in enumerate(self.layout.types) if tp.num_partitions > 1
                for p in self.layout.bucket_parts(t, bucket)}

    def rounds(self, order: list[Bucket]) -> list[list[Bucket | None]]:
        """The order's buckets as rounds: round k gives process r the bucket rounds[k][r] (None:
        it waits that round)."""
        return assign_rounds(order, self.cluster.size)

    def keep(self, resident: dict, bucket: Bucket | None) -> dict:
        """What stays resident ((type, slot) -> partition) after a round whose next bucket for
        this process is `bucket`."""
        return resident

    def start(self, state: TrainState) -> None:
        """Training (re)starts from `state`."""

    def end_round(self, state: TrainState, buckets: list[Bucket | None], k: int, epoch: int,
                  chunk: int, last: bool) -> TrainState:
        """After round k (`buckets`: every process's bucket of it; `last`: the pass's final round),
        with the checkpoint's progress already at the next round; returns the state to go on with."""
        raise NotImplementedError

    def end_epoch(self, state: TrainState, epoch: int) -> None:
        """After epoch `epoch` (0-based; progress already at the next one): commit, and keep a
        snapshot every storage.checkpoint_preservation_interval epochs."""
        raise NotImplementedError

    def pass_totals(self, totals: dict[str, float]) -> dict[str, float]:
        """A pass's summed figures (loss, reg, count, io_bytes) over every process."""
        return totals

    def _snapshot(self, epoch: int, saved: bool) -> None:
        every = self.cfg.storage.checkpoint_preservation_interval
        if saved and every and (epoch + 1) % every == 0:
            self.checkpoint.store.snapshot(f"epoch_{epoch + 1}")


class LocalScheduler(BucketScheduler):
    """One process: one bucket per round."""

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self.prefetch = self.cfg.storage.prefetch_partitions

    def end_round(self, state, buckets, k, epoch, chunk, last):
        self.checkpoint.since_commit += 1
        if not last and self.checkpoint.due():
            self.checkpoint.commit(state)
        return state

    def end_epoch(self, state, epoch):
        if self.cfg.storage.save:
            self.checkpoint.commit(state)
        self._snapshot(epoch, self.cfg.storage.save)


class DistributedScheduler(BucketScheduler):
    """Several processes training disjoint buckets, parameter averaging at round ends."""

    skip_calibration = "several processes"

    def __init__(self, *args) -> None:
        super().__init__(*args)
        flat = [tp.name for tp in self.layout.types if tp.num_partitions == 1]
        if flat:
            raise ValueError(f"distributed training needs every entity type partitioned; "
                             f"{flat} have num_partitions=1 (use about 2 partitions per process)")
        self._round_start = None  # relation parameters (and accumulators) when the round began

    def keep(self, resident, bucket):
        """Only partitions this process's next bucket needs (everything was committed already)."""
        need = self.uses(bucket) if bucket is not None else set()
        return {(t, s): p for (t, s), p in resident.items()
                if self.layout.types[t].num_partitions == 1 or (t, p) in need}

    def start(self, state):
        self._round_start = jax.tree_util.tree_map(np.asarray, (state.params, state.opt_state))

    def end_round(self, state, buckets, k, epoch, chunk, last):
        self.checkpoint.since_commit += 1
        state = self._average(state)
        mine = buckets[self.rank]
        if mine is not None:
            used = self.uses(mine)
            self.table.write_resident(lambda t, part: (t, part) in used)
        others = [tp for r, b in enumerate(buckets) if b is not None and r != self.rank
                  for tp in self.uses(b)]
        self.checkpoint.commit_shared(state, self.cluster, f"e{epoch}c{chunk}r{k}", others)
        return state

    def end_epoch(self, state, epoch):
        # the partitions were committed by the rounds
        self.checkpoint.commit_shared(state, self.cluster, f"epoch{epoch}", [])
        self._snapshot(epoch, self.cluster.primary)

    def pass_totals(self, totals):
        """The epoch's line counts every process's edges; times stay this process's."""
        keys = ("loss", "reg", "count", "io_bytes")
        summed = self.cluster.allsum({k: np.float64(totals[k]) for k in keys})
        return totals | {k: float(v) for k, v in summed.items()}

    def _average(self, state: TrainState) -> TrainState:
        """Every process applies the mean of all processes' relation-parameter (and Adagrad
        accumulator) changes since the last round: parameter averaging at round boundaries."""
        cur = jax.tree_util.tree_map(np.asarray, (state.params, state.opt_state))
        base = self._round_start
        delta = jax.tree_util.tree_map(lambda a, b: a - b, cur, base)
        total = self.cluster.allsum(delta)
        n = self.cluster.size
        new = jax.tree_util.tree_map(lambda b, d: jnp.asarray(b + d / n), base, total)
        self._round_start = jax.tree_util.tree_map(np.asarray, new)
        return state._replace(params=new[0], opt_state=new[1])


def make_scheduler(cfg: TrainConfig, layout: PartitionLayout, cluster: Cluster,
                   checkpoint: Checkpointer, table: WorkingTable) -> BucketScheduler:
    """The scheduler for this job: distributed when the cluster has several processes."""
    kind = DistributedScheduler if cluster.distributed else LocalScheduler
    return kind(cfg, layout, cluster, checkpoint, table)
