"""Warm start (`storage.init_path`): begin a run from another run's trained embeddings.

Entities and relations are matched by name when both runs know their names (so a run on a grown
graph keeps what was learned and new entities start from the usual random init); otherwise the
counts must agree and ids are matched as they are. Row-Adagrad accumulators and the relation
optimizer start fresh. The result is committed as version 1 of the new checkpoint, so training
then loads its partitions as usual.
"""

from __future__ import annotations

import logging

import jax
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jgraph.config import TrainConfig
from jgraph.core.step import TrainState
from jgraph.data.dataset import Dataset
from jgraph.plan.partition import PartitionLayout
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.tables import initial_rows

log = logging.getLogger("jgraph")


def _match(new: pa.Array | None, old: pa.Array | None, n_new: int, n_old: int, what: str) -> np.ndarray:
    """For each new id, the old id with the same name (-1: none)."""
    if new is not None and old is not None:
        return pc.index_in(new, value_set=old).fill_null(-1).to_numpy(zero_copy_only=False).astype(np.int64)
    if n_new != n_old:
        raise ValueError(f"init_path: {what} counts differ ({n_old} there, {n_new} here) and names are "
                         "not available to match them")
    return np.arange(n_new, dtype=np.int64)


def warm_start(cfg: TrainConfig, ds: Dataset, layout: PartitionLayout, store: CheckpointStore,
               state: TrainState, path: str) -> TrainState:
    """Write every partition of the new run (matched rows from the run at `path`, the others their
    first-touch rows, tables.initial_rows) into `store`; returns `state` with the matched relation
    parameters. The caller commits."""
    from jgraph.trained import load_run

    run = load_run(path)
    d = cfg.model.dimension
    if run.cfg.model.dimension != d:
        raise ValueError(f"init_path {path}: dimension {run.cfg.model.dimension}, this run {d}")
    emb_old = np.asarray(run.emb)
    kept = 0
    for t, tp in enumerate(layout.types):
        full = np.zeros((tp.count, d), np.float32)
        for p in range(tp.num_partitions):
            full[tp.members[p]] = initial_rows(cfg, t, p, tp.capacity)[: tp.sizes[p]]
        if tp.name in run.ds.entity_types:
            t_old = run.ds.entity_types.index(tp.name)
            n_old = run.ds.num_entities(tp.name)
            idx = _match(ds.entity_names.get(tp.name), run.ds.entity_names.get(tp.name), tp.count, n_old,
                         f"entity type {tp.name!r}")
            found = idx >= 0
            full[found] = emb_old[run.offsets[t_old] + idx[found]]
            kept += int(found.sum())
        for p in range(tp.num_partitions):
            rows = np.zeros((tp.capacity, d), np.float32)
            rows[: tp.sizes[p]] = full[tp.members[p]]
            store.write_partition(tp.name, p, rows, np.zeros(tp.capacity, np.float32),
                                  count=tp.sizes[p])
    rel = _match(pa.array(ds.relation_names), pa.array(run.ds.relation_names), ds.num_relations,
                 run.ds.num_relations, "relation")
    params = jax.tree_util.tree_map(np.array, state.params)  # writable copies
    old = jax.tree_util.tree_map(np.asarray, run.params)
    for side in ("lhs", "rhs"):
        for kind, leaves in params.get(side, {}).items():
            for name, arr in leaves.items():
                src = old.get(side, {}).get(kind, {}).get(name)
                if src is not None and src.shape[1:] == arr.shape[1:]:
                    arr[rel >= 0] = src[rel[rel >= 0]]
    if "global" in params and "global" in old and old["global"].shape == params["global"].shape:
        params["global"] = old["global"]
    for key, enc in params.get("encoder", {}).items():  # featurized types' encoders, same width
        src = old.get("encoder", {}).get(key)
        if src is not None and jax.tree_util.tree_map(np.shape, src) == jax.tree_util.tree_map(np.shape, enc):
            params["encoder"][key] = src
    log.info("warm start from %s: %d of %d entities and %d of %d relations carried over", path, kept,
             sum(t.count for t in layout.types), int((rel >= 0).sum()), ds.num_relations)
    return state._replace(params=jax.tree_util.tree_map(jax.numpy.asarray, params))
