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

from jgraph.assembly import (
    build_model,
    fingerprint,
    fingerprint_mismatch,
    partition_layout,
    state_from_arrays,
)
from jgraph.config import TrainConfig, to_config
from jgraph.core.model import Model
from jgraph.core.step import init_state
from jgraph.data.dataset import Dataset, load_dataset
from jgraph.plan.partition import PartitionLayout, partition_shifts, shifts_from_arrays
from jgraph.readout import assemble, initial_rows
from jgraph.storage.checkpoint import CheckpointError, CheckpointStore
from jgraph.validation import validate


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
    """The config a checkpoint recorded, with dotlist `overrides` (data.root=...), checked as a
    training run's is: unknown keys rejected (config.to_config), values validated."""
    merged = OmegaConf.merge(OmegaConf.create(manifest["config"]), OmegaConf.from_dotlist(overrides or []))
    cfg = to_config(merged)
    validate(cfg)
    return cfg


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
    kept: dict | None = None  # the mapping kept with the run (None: a run from before, data read)
    _data: Dataset | None = None  # the dataset with edges, once read (see data())
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
        if data is None and int(self.store.manifest.get("progress", {}).get("epoch", 1)) > 0:
            raise CheckpointError(f"{self.location}: partition {p} of {tp.name!r} was never written")
        if data is None:  # a checkpoint in the first epoch: no bucket has touched it yet
            rows = initial_rows(self.cfg, t, p, tp.capacity)[: tp.sizes[p]]
        else:
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
        """Entity names in id order (kept with the run; None if the data has none: ids are names)."""
        from jgraph.mapping import entity_names

        return entity_names(self.cfg, self.ds, entity_type)

    def data(self, required: bool = True) -> Dataset | None:
        """The run's dataset with its edges, read from the data files and checked against the
        names kept with the run (evaluation, known answers). Missing data: a DataError saying
        that this needs the data, or None when not `required`."""
        if self._data is None:
            from jgraph.errors import DataError
            from jgraph.mapping import check_hash, content_hash

            try:
                ds = load_dataset(self.cfg)
            except (DataError, FileNotFoundError) as e:
                if not required:
                    return None
                raise DataError(f"this needs the run's data files (the run keeps only its names): {e}"
                                ) from None
            if self.kept is not None:
                try:
                    check_hash(self.kept, content_hash(self.cfg, ds), self.location)
                except CheckpointError as e:
                    if required:
                        raise
                    import logging

                    logging.getLogger("jgraph").warning("%s; its edges are not used", e)
                    return None
            self._data = ds
        return self._data

    def close(self) -> None:
        self.store.close()


def open_run(path: str, overrides: list[str] | None = None,
             allow_plugins: list[str] | tuple[str, ...] = ()) -> OpenRun:
    """Open a run directory or checkpoint; `overrides` are dotlist config changes (data.root=...).

    Names, relations and partitions come from the mapping kept with the run, so no data file is
    read. Plugins: only those of the installed package (`models`) and `allow_plugins` are imported,
    whatever the checkpoint lists (opening a run someone sent must not run their code)."""
    loc = checkpoint_location(path)
    if "://" not in loc and not os.path.exists(loc):
        raise CheckpointError(f"{path}: no such run directory or checkpoint")
    store = CheckpointStore(loc)  # a reader: takes no lock, deletes nothing
    if not store.exists():
        raise CheckpointError(f"{loc}: no checkpoint here (no checkpoint.json): not a finished or "
                              "started run directory")
    m = store.manifest
    cfg = config_from_manifest(m, overrides)
    from jgraph.assembly import load_plugins, trusted_plugins

    load_plugins(trusted_plugins(cfg.plugins, allow_plugins))
    _warn_if_unfinished(path, cfg, m)
    from jgraph.mapping import dataset_from_mapping, read_mapping

    kept = read_mapping(loc)
    if kept is not None:
        ds = dataset_from_mapping(loc, kept)
        data = None
    else:  # a run from before mappings were kept: its data files give the names
        ds = data = load_dataset(cfg)
        changed = fingerprint_mismatch(m.get("fingerprint"), fingerprint(cfg, ds))
        if changed:
            raise CheckpointError(f"{loc}: the data or settings no longer match the checkpoint "
                                  f"({changed}); point data.root at the data it was trained on")
    model = build_model(cfg, ds)
    template = init_state(model, cfg.training.seed, cfg.training.rng_impl,
                          cfg.optimizer.relation_lr or cfg.optimizer.lr, cfg.optimizer.eps)
    arrays = store.read_params()
    state = state_from_arrays(template, arrays)
    layout = partition_layout(cfg, ds)
    return OpenRun(cfg, ds, model, state.params, layout, store, loc, kept, data,
                   shifts_from_arrays(layout, arrays))


def _warn_if_unfinished(path: str, cfg: TrainConfig, manifest: dict) -> None:
    done = int(manifest.get("progress", {}).get("epoch", cfg.training.num_epochs))
    if done < cfg.training.num_epochs:
        import logging

        logging.getLogger("jgraph").warning("run %s stopped at epoch %d of %d; using its last checkpoint",
                                            path, done, cfg.training.num_epochs)


def load_run(path: str, overrides: list[str] | None = None, with_data: bool = False,
             allow_plugins: list[str] | tuple[str, ...] = ()) -> TrainedRun:
    """Open a run directory or checkpoint with every entity's row in memory (see OpenRun);
    `with_data`: its dataset holds the edges read from the data files (evaluation)."""
    run = open_run(path, overrides, allow_plugins)
    ds = run.data() if with_data else run.ds
    emb, offsets = assemble(run.layout, run.cfg.model.dimension,
                            lambda t, p: run.partition(t, p, centered=False),
                            run.cfg.model.center_partitions, run._shifts)
    run.close()
    m = run.store.manifest
    return TrainedRun(run.cfg, ds, run.model, run.params, emb, offsets, run.store.version,
                      dict(m.get("progress", {})))


def run_dir_of(path: str) -> Path:
    loc = checkpoint_location(path)
    return Path(loc).parent if "://" not in loc else Path(".")
