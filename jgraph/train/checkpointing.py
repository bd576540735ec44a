"""Training's side of the checkpoint: where training stands (progress, history, calibrated
read-out shifts), restored from the last committed version or a warm start, and new versions
committed: resident partitions, then the parameters, then the manifest switch.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import numpy as np

from jgraph.assembly import fingerprint, fingerprint_mismatch, state_arrays, state_from_arrays
from jgraph.config import TrainConfig
from jgraph.core.step import TrainState
from jgraph.data.dataset import Dataset
from jgraph.memory import trim
from jgraph.plan.partition import PartitionLayout, shifts_from_arrays, shifts_to_arrays
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.cluster import Cluster
from jgraph.train.tables import WorkingTable

log = logging.getLogger("jgraph")


class Checkpointer:
    """progress {"epoch", "chunk" (edge chunk), "bucket" (next round)}: where a resumed run
    continues; history: the finished epochs' lines; shifts: type index -> float32 [P, D]."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, layout: PartitionLayout, store: CheckpointStore,
                 table: WorkingTable, processes: int) -> None:
        self.cfg, self.ds, self.layout, self.store, self.table = cfg, ds, layout, store, table
        self.processes = processes
        self.progress: dict[str, int] = {"epoch": 0, "chunk": 0, "bucket": 0}
        self.history: list[dict[str, Any]] = []
        self.shifts: dict[int, np.ndarray] = {}
        self.since_commit = 0  # rounds trained since the last commit
        self.last_commit = time.perf_counter()
        # called with the state before a commit writes anything (featurized types' derived rows)
        self.before_commit: Callable[[TrainState], None] | None = None

    def restore(self, state: TrainState) -> TrainState:
        """The state of the last committed version (progress, history and shifts with it); a new
        checkpoint with storage.init_path: the warm start, committed as its first version."""
        if not self.store.exists():
            if self.cfg.storage.init_path:
                from jgraph.train.warm_start import warm_start

                state = warm_start(self.cfg, self.ds, self.layout, self.store, state,
                                   self.cfg.storage.init_path)
                self.commit(state)
            return state
        m = self.store.manifest
        want = fingerprint(self.cfg, self.ds)
        changed = fingerprint_mismatch(m.get("fingerprint"), want)
        if changed:
            raise ValueError(
                f"checkpoint {self.store.url} belongs to another model/data ({changed}); "
                "use a fresh storage.checkpoint_dir"
            )
        arrays = self.store.read_params()
        state = state_from_arrays(state, arrays)
        self.shifts = shifts_from_arrays(self.layout, arrays)
        self.progress = dict(m["progress"])
        self.history = list(m.get("history", []))
        log.info("resuming from %s version %d: epoch %d, bucket %d", self.store.url,
                 self.store.version, self.progress["epoch"], self.progress["bucket"])
        return state

    def due(self) -> bool:
        """A commit after this round: storage.checkpoint_every_buckets rounds or
        checkpoint_every_seconds since the last one (storage.save)."""
        s = self.cfg.storage
        rounds = s.checkpoint_every_buckets and self.since_commit >= s.checkpoint_every_buckets
        seconds = (s.checkpoint_every_seconds
                   and time.perf_counter() - self.last_commit >= s.checkpoint_every_seconds)
        return s.save and bool(rounds or seconds)

    def commit(self, state: TrainState) -> None:
        """Write every resident partition and the parameters, then switch the manifest to them
        (a partition unchanged since stored is not written again: a frozen type's, tables.py)."""
        if self.before_commit is not None:
            self.before_commit(state)
        self.table.write_resident()
        self.store.write_params(self._arrays(state))
        self.store.commit(dict(self.progress), self._manifest_extra())
        trim()
        self._committed()

    def commit_shared(self, state: TrainState, cluster: Cluster, tag: str,
                      others: list[tuple[int, int]]) -> None:
        """Several processes, each having written its partitions: barrier (every process's writes
        are durable), process 0 commits its own and the `others` (type, partition) in one switch,
        barrier, the other processes re-read the manifest."""
        self.store.wait(durable=True)  # each process makes its own writes durable
        cluster.barrier(f"written-{tag}")
        if cluster.primary:
            for t, part in others:
                self.store.add_pending(self.layout.types[t].name, part)
            self.store.write_params(self._arrays(state))
            self.store.commit(dict(self.progress), self._manifest_extra())
        cluster.barrier(f"committed-{tag}")
        if not cluster.primary:
            self.store.refresh()
        self._committed()

    def _committed(self) -> None:
        self.since_commit = 0
        self.last_commit = time.perf_counter()

    def _arrays(self, state: TrainState) -> dict[str, np.ndarray]:
        """What a checkpoint saves beside the partitions: the training state and the calibrated
        read-out shifts."""
        return state_arrays(state) | shifts_to_arrays(self.layout, self.shifts)

    def _manifest_extra(self) -> dict[str, Any]:
        return {"fingerprint": fingerprint(self.cfg, self.ds), "history": self.history,
                "config": asdict(self.cfg), "processes": self.processes}
