"""Reopening a trained run from its checkpoint: config, dataset, model, parameters and tables.

Used by `jgraph.evaluate` (and by export/prediction): everything needed to score with exactly the
training scorer, with entity rows gathered back into entity-id order.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from omegaconf import OmegaConf

from jgraph.config import TrainConfig
from jgraph.data.dataset import Dataset, load_dataset
from jgraph.model import Model
from jgraph.step import init_state
from jgraph.storage.checkpoint import CheckpointError, CheckpointStore
from jgraph.trainer import build_model, fingerprint, partition_layout, state_from_arrays


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


def load_run(path: str, overrides: list[str] | None = None) -> TrainedRun:
    """Open a run directory or checkpoint; `overrides` are dotlist config changes (data.root=...)."""
    loc = checkpoint_location(path)
    store = CheckpointStore(loc)
    if not store.exists():
        raise CheckpointError(f"{loc}: no checkpoint (no checkpoint.json)")
    m = store.manifest
    cfg = config_from_manifest(m, overrides)
    from jgraph.train import load_plugins

    load_plugins(cfg.plugins)
    ds = load_dataset(cfg)
    if fingerprint(cfg, ds) != m.get("fingerprint"):
        raise CheckpointError(f"{loc}: the data no longer matches the checkpoint (entity or relation "
                              "counts changed); point data.root at the data it was trained on")
    model = build_model(cfg, ds)
    template = init_state(model, cfg.training.seed, cfg.training.rng_impl,
                          cfg.optimizer.relation_lr or cfg.optimizer.lr, cfg.optimizer.eps)
    state = state_from_arrays(template, store.read_params())
    layout = partition_layout(cfg, ds)
    tables, offsets, off = [], [], 0
    for tp in layout.types:
        offsets.append(off)
        off += tp.count
        full = np.zeros((tp.count, cfg.model.dimension), np.float32)
        for p in range(tp.num_partitions):
            data = store.read_partition(tp.name, p).result()
            if data is None:
                raise CheckpointError(f"{loc}: partition {p} of {tp.name!r} was never written")
            full[tp.members[p]] = data[0][: tp.sizes[p]]
        tables.append(full)
    store.close()
    emb = jnp.asarray(np.concatenate(tables) if len(tables) > 1 else tables[0])
    return TrainedRun(cfg, ds, model, state.params, emb, np.array(offsets, np.int64),
                      store.version, dict(m.get("progress", {})))


def run_dir_of(path: str) -> Path:
    loc = checkpoint_location(path)
    return Path(loc).parent if "://" not in loc else Path(".")
