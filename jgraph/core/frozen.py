"""Frozen entity types and relations (training.frozen_types / frozen_relations, PBG #270): their
rows and parameters take part in scoring but no update changes them.

In the step a frozen row's update is sent to the scratch row (sparse) or left untouched (dense),
so its row and Adagrad accumulator stay bit-identical; a frozen relation's (and a frozen type's
global vector and encoder) gradients are zeroed before the relation optimizer, whose Adagrad
update of a zero gradient is exactly zero.

Shapes: K working-table rows, M gathered ids, R relations, T types, D dimension.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

Array = Any


def frozen_rows(frozen_types: tuple, lo: Array, n: Array, ids: Array) -> Array:
    """bool [...]: which working-table row ids [...] belong to a frozen type's resident partitions
    (either side's slot: lo/n int32 [T, 2], the bucket's Layout)."""
    out = jnp.zeros(ids.shape, bool)
    for t in frozen_types:
        for side in (0, 1):
            out = out | ((ids >= lo[t, side]) & (ids < lo[t, side] + n[t, side]))
    return out


def trainable(spec: Any, layout: Any, ids: Array, mask: Array | None = None) -> Array | None:
    """`mask` (bool [...]; None: all) without the row ids [...] of ModelSpec.frozen_types (their
    slots in the bucket's Layout); `mask` unchanged when no type is frozen."""
    if not spec.frozen_types:
        return mask
    keep = ~frozen_rows(spec.frozen_types, layout.lo, layout.n, ids)
    return keep if mask is None else mask & keep


def freeze_gradients(spec: Any, g_params: dict) -> dict:
    """The relation parameters' gradients with ModelSpec.frozen_relations' rows (operator leaves
    are [R, ...]), and the frozen_types' global vectors ([T, D]) and encoders, zeroed."""
    from jgraph.core.features import encoder_key

    frozen_types, frozen_relations = spec.frozen_types, spec.frozen_relations
    if not (frozen_types or frozen_relations):
        return g_params
    out = dict(g_params)
    if frozen_relations:
        rel = np.asarray(frozen_relations, np.int32)
        for side in ("lhs", "rhs"):
            if side in out:
                out[side] = jax.tree_util.tree_map(lambda g: g.at[rel].set(0.0), out[side])
    if frozen_types and "global" in out:
        out["global"] = out["global"].at[np.asarray(frozen_types, np.int32)].set(0.0)
    if frozen_types and "encoder" in out:
        enc = dict(out["encoder"])
        for t in frozen_types:
            if encoder_key(t) in enc:
                enc[encoder_key(t)] = jax.tree_util.tree_map(jnp.zeros_like, enc[encoder_key(t)])
        out["encoder"] = enc
    return out
