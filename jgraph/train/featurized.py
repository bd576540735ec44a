"""Training's side of featurized entity types (core/features.py): the feature lists on the
device, and the derived rows of each featurized type written into its slot of the working table
before a checkpoint is written or the tables are read out.

Shapes: E entities of a featurized type, F features per entity (padded to the run's widest), D
dimension, B entities per derive call.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.core.features import FeatureRows, derive_rows
from jgraph.core.model import Model
from jgraph.core.optim import decode_rows, encode_rows
from jgraph.core.step import Tables
from jgraph.data.dataset import Dataset
from jgraph.errors import ConfigError
from jgraph.plan.partition import PartitionLayout

DERIVE_BLOCK = 4096  # entities per derive call


def padded_lists(model: Model, ds: Dataset) -> list[tuple[np.ndarray, np.ndarray]]:
    """Each featurized type's (ids [E, F], weights [E, F]), padded to one F for the run."""
    types = ds.entity_types
    lists = [ds.features[types[t]] for t, _ in model.spec.featurized]
    f = max(ids.shape[1] for ids, _ in lists)
    return [(np.pad(ids, ((0, 0), (0, f - ids.shape[1])), constant_values=-1),
             np.pad(w, ((0, 0), (0, f - w.shape[1])))) for ids, w in lists]


def feature_rows(model: Model, ds: Dataset, negatives: Any) -> tuple[FeatureRows, ...] | None:
    """Layout.feat of the run's batches (None without featurized types)."""
    if not model.spec.featurized:
        return None
    if negatives.all_negs:
        raise ConfigError("negatives.mode=all (all_negs) is not supported with featurized entity "
                          "types (nor in PBG): use negatives.mode=sampled")
    return tuple(FeatureRows(jnp.asarray(i), jnp.asarray(w)) for i, w in padded_lists(model, ds))


@partial(jax.jit, donate_argnums=(0,), static_argnums=(5, 6, 7))
def _derive_block(tables: Tables, params: dict, ids: Any, w: Any, start: Any, lo: tuple,
                  t: int, model: Model) -> Tables:
    lo_t, lo_f, count = lo
    rows = decode_rows(tables.emb.at[lo_f + jnp.maximum(ids, 0)].get(mode="promise_in_bounds"))
    spec = model.spec
    hidden = dict(zip([a for a, _ in spec.featurized], spec.encoder_hidden, strict=True))[t]
    x = derive_rows(rows, FeatureRows(ids, w), params, t, hidden, model.renorm)
    e = start + jnp.arange(ids.shape[0])
    at = jnp.where(e < count, lo_t + e, tables.emb.shape[0])  # past the end: dropped
    return tables._replace(emb=tables.emb.at[at].set(encode_rows(x, tables.emb.dtype), mode="drop"))


def deriver(model: Model, layout: PartitionLayout, ds: Dataset
            ) -> Callable[[Tables, dict], Tables] | None:
    """fn(tables, params) -> tables with every featurized type's slot holding its entities'
    embeddings (weighted mean of their feature rows, encoded); None without featurized types."""
    if not model.spec.featurized:
        return None
    lists = padded_lists(model, ds)

    def derive(tables: Tables, params: dict) -> Tables:
        for (t, tf), (ids, w) in zip(model.spec.featurized, lists, strict=True):
            lo = (layout.slot_start[t][0], layout.slot_start[tf][0], ids.shape[0])
            b = min(DERIVE_BLOCK, max(ids.shape[0], 1))
            for a in range(0, ids.shape[0], b):
                i, ww = ids[a : a + b], w[a : a + b]
                if i.shape[0] < b:  # one shape per type: the last block padded
                    i = np.pad(i, ((0, b - i.shape[0]), (0, 0)), constant_values=-1)
                    ww = np.pad(ww, ((0, b - ww.shape[0]), (0, 0)))
                tables = _derive_block(tables, params, jnp.asarray(i), jnp.asarray(ww),
                                       jnp.int32(a), lo, t, model)
        return tables

    return derive
