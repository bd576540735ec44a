"""Reopening a trained run from its checkpoint: config, dataset, model, parameters and tables.

Used by `jgraph.cli.evaluate` (and by export/prediction): everything needed to score with exactly the
training scorer, with entity rows gathered back into entity-id order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
from omegaconf import OmegaConf

from jgraph.assembly import build_model, fingerprint, partition_layout, state_from_arrays
from jgraph.config import TrainConfig
from jgraph.core.model import Model
from jgraph.core.step import init_state
from jgraph.data.dataset import Dataset, load_dataset
from jgraph.plan.partition import PartitionLayout, center_rows, partition_shifts, shifts_from_arrays
from jgraph.storage.checkpoint import CheckpointError, CheckpointStore


@dataclass
class TrainedRun:
    cfg: TrainConfig
    ds: Dataset
    model: Model
    params: dict
    emb: jnp.ndarray  # float32 [sum of entity counts, D], entity-id order, types concatenated
    offsets: np.ndarray  # int64 [T] first row of each entity type in `emb`
    version: int
    progress: dict


def checkpoint_location(path: str) -> str:
    """A run directory (holding checkpoint/) or a checkpoint location itself."""
    if "://" not in path and os.path.isfile(os.path.join(path, "checkpoint", "checkpoint.json")):
        return os.path.join(path, "checkpoint")
    return path


def config_from_manifest(manifest: dict, overrides: list[str] | None = None) -> TrainConfig:
    base = OmegaConf.structured(TrainConfig)
    merged = OmegaConf.merge(base, manifest["config"], OmegaConf.from_dotlist(overrides or []))
    obj = OmegaConf.to_object(merged)
    assert isinstance(obj, TrainConfig)
    return obj


@dataclass
class OpenRun:
    """A trained run opened without reading its tables: partitions are read one at a time, so
    export, prediction and neighbour search work on tables larger than memory."""

    cfg: TrainConfig
    ds: Dataset
    model: Model
    params: dict
    layout: PartitionLayout
    store: CheckpointStore
    location: str  # the checkpoint
    _shifts: dict = field(default_factory=dict)  # type index -> float32 [P, D] read-out shifts:
    #                                              the calibrated ones saved with the parameters,
    #                                              or else computed (model.center_partitions)

    def partition(self, t: int, p: int, centered: bool = True) -> np.ndarray:
        """Rows of partition p of entity type t, in row order (members[p] are their ids); with
        model.center_partitions shifted by the calibrated shifts, or else as `partition_shifts`
        says, from the mean rows the partitions were stored with (a checkpoint written without
        them: the first call per type reads every partition of the type once for its mean).
        centered=False: as stored."""
        tp = self.layout.types[t]
        data = self.store.read_partition(tp.name, p).result()
        if data is None:
            raise CheckpointError(f"{self.location}: partition {p} of {tp.name!r} was never written")
        rows = np.asarray(data[0][: tp.sizes[p]], np.float32)  # bfloat16 tables: as float32
        if centered and self.cfg.model.center_partitions and tp.num_partitions > 1:
            if t not in self._shifts:
                stored = [self.store.read_partition_mean(tp.name, q) for q in range(tp.num_partitions)]
                means = [m if m is not None else
                         self.partition(t, q, centered=False).mean(0) if tp.sizes[q] else
                         np.zeros(rows.shape[1]) for q, m in enumerate(stored)]
                self._shifts[t] = partition_shifts(np.stack(means), tp.sizes)
            rows += self._shifts[t][p]
        return rows

    def names(self, entity_type: str) -> pa.Array | None:
        """Entity names in id order (a prepared dataset keeps them on disk; None if it has none)."""
        names = self.ds.entity_names.get(entity_type)
        if names is None and self.cfg.data.format == "prepared":
            from jgraph.data.prepared import dataset_location, load_names
            from jgraph.errors import DataError

            try:
                names = load_names(dataset_location(self.cfg.data), entity_type)
            except DataError:
                return None
            self.ds.entity_names[entity_type] = names
        return names

    def close(self) -> None:
        self.store.close()


def open_run(path: str, overrides: list[str] | None = None) -> OpenRun:
    """Open a run directory or checkpoint; `overrides` are dotlist config changes (data.root=...)."""
    loc = checkpoint_location(path)
    store = CheckpointStore(loc)
    if not store.exists():
        raise CheckpointError(f"{loc}: no checkpoint (no checkpoint.json)")
    m = store.manifest
    cfg = config_from_manifest(m, overrides)
    from jgraph.assembly import load_plugins

    load_plugins(cfg.plugins)
    ds = load_dataset(cfg)
    if fingerprint(cfg, ds) != m.get("fingerprint"):
        raise CheckpointError(f"{loc}: the data no longer matches the checkpoint (entity or relation "
                              "counts changed); point data.root at the data it was trained on")
    model = build_model(cfg, ds)
    template = init_state(model, cfg.training.seed, cfg.training.rng_impl,
                          cfg.optimizer.relation_lr or cfg.optimizer.lr, cfg.optimizer.eps)
    arrays = store.read_params()
    state = state_from_arrays(template, arrays)
    layout = partition_layout(cfg, ds)
    return OpenRun(cfg, ds, model, state.params, layout, store, loc, shifts_from_arrays(layout, arrays))


def load_run(path: str, overrides: list[str] | None = None) -> TrainedRun:
    """Open a run directory or checkpoint with every entity's row in memory (see OpenRun)."""
    run = open_run(path, overrides)
    tables, offsets, off = [], [], 0
    for t, tp in enumerate(run.layout.types):
        offsets.append(off)
        off += tp.count
        full = np.zeros((tp.count, run.cfg.model.dimension), np.float32)
        for p in range(tp.num_partitions):
            full[tp.members[p]] = run.partition(t, p, centered=False)
        if run.cfg.model.center_partitions and tp.num_partitions > 1:
            center_rows(full, tp.members, run._shifts.get(t))
        tables.append(full)
    run.close()
    emb = jnp.asarray(np.concatenate(tables) if len(tables) > 1 else tables[0])
    m = run.store.manifest
    return TrainedRun(run.cfg, run.ds, run.model, run.params, emb, np.array(offsets, np.int64),
                      run.store.version, dict(m.get("progress", {})))


def run_dir_of(path: str) -> Path:
    loc = checkpoint_location(path)
    return Path(loc).parent if "://" not in loc else Path(".")
