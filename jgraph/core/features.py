"""Featurized entity types (PBG `featurized`): an entity is a bag of features and its embedding is
the weighted mean of its features' rows, optionally passed through a learned encoder.

The feature vocabulary of a featurized type T is an ordinary, unpartitioned entity type of the
run (`feature_type_name(T)`), so its rows are trained, stored, swapped and warm-started like any
other table. T keeps its slot in the working table, but training never updates it: every row id
of T the step gathers is replaced by its features' row ids (`expand`), fixed-width lists padded to
F (the most features of an entity) with weight 0 pointing at the scratch row, and the gathered
feature rows are combined inside the differentiated function (`combine`), so gradients reach the
feature rows and row-wise Adagrad updates them. T's slot holds the *derived* embeddings
(`derive_rows`), recomputed before a checkpoint is written or the tables are read out, so
evaluation, export, predict and neighbours read them like any table: an entity that appears only
in the features file (cold start) gets the embedding of its features.

The encoder (entities.T.encoder_hidden > 0) is a small flax (linen) MLP with a residual
connection, x + W2 relu(W1 x + b1) + b2, W2 and b2 starting at zero (so it starts as the plain
mean); its parameters sit in the relation parameters (params["encoder"]) and are trained by the
relation optimizer.

Shapes: E entities of T, F features per entity (padded), D dimension, K working-table rows.
"""

from __future__ import annotations

from functools import cache
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

Array = Any
FEATURES_SUFFIX = "__features"


def feature_type_name(entity_type: str) -> str:
    """The hidden entity type that holds the feature rows of featurized type `entity_type`."""
    return entity_type + FEATURES_SUFFIX


class FeatureRows(NamedTuple):
    """The features of every entity of one featurized type (a CSR padded to F columns)."""

    ids: Array  # int32 [E, F] feature ids (rows of the feature type); -1 marks padding
    weight: Array  # float32 [E, F] each feature's weight in the mean (rows sum to 1, or 0 for an
    #                entity without features); 0 on padding


@cache
def encoder_class() -> type:
    """The encoder, a flax linen Module (flax imported only when a run has an encoder):
    Encoder(hidden, dimension): x + Dense(relu(Dense(x))), [..., D] -> [..., D]; the output layer
    starts at zero."""
    import flax.linen as nn

    class Encoder(nn.Module):
        hidden: int
        dimension: int

        @nn.compact
        def __call__(self, x: Array) -> Array:
            h = nn.relu(nn.Dense(self.hidden, name="hidden")(x))
            out = nn.Dense(self.dimension, name="out", kernel_init=nn.initializers.zeros)(h)
            return x + out

    return Encoder


def encoder_key(t: int) -> str:
    return f"type{t}"


def init_encoders(featurized: tuple, hidden: tuple, dimension: int) -> dict:
    """params["encoder"]: {encoder_key(t): linen params} for the featurized types with hidden > 0."""
    out = {}
    for (t, _), h in zip(featurized, hidden, strict=True):
        if h:
            x = jnp.zeros((1, dimension), jnp.float32)
            out[encoder_key(t)] = encoder_class()(h, dimension).init(jax.random.key(t), x)["params"]
    return out


def encode(params: dict, t: int, hidden: int, x: Array) -> Array:
    """The encoder of type t applied to mean embeddings x [..., D] (identity when hidden is 0)."""
    if not hidden:
        return x
    return encoder_class()(hidden, x.shape[-1]).apply({"params": params["encoder"][encoder_key(t)]}, x)


def expand(featurized: tuple, lo: Array, n: Array, feat: tuple, ids: Array, num_rows: int
           ) -> tuple[Array, Array, list[Array]]:
    """Working-table row ids [...] -> (row ids [..., F], weights [..., F], per featurized type a
    bool [...] mask of the ids that were its entities).

    A row of a plain type stays itself with weight 1, its other F - 1 entries the scratch row
    (`num_rows`) with weight 0; an entity of featurized type t (its rows [lo[t, 0], lo[t, 0] +
    n[t, 0]): t is unpartitioned) becomes its features' rows in the feature type's slot."""
    f = feat[0].ids.shape[1]
    pad = jnp.full(ids.shape + (f - 1,), num_rows, ids.dtype)
    rows = jnp.concatenate([ids[..., None], pad], axis=-1)
    w = jnp.concatenate([jnp.ones(ids.shape + (1,), jnp.float32),
                         jnp.zeros(ids.shape + (f - 1,), jnp.float32)], axis=-1)
    masks = []
    for (t, tf), fr in zip(featurized, feat, strict=True):
        inside = (ids >= lo[t, 0]) & (ids < lo[t, 0] + n[t, 0])
        off = jnp.clip(ids - lo[t, 0], 0, fr.ids.shape[0] - 1)
        fid = fr.ids[off]
        frow = jnp.where(fid >= 0, lo[tf, 0] + fid, num_rows)
        rows = jnp.where(inside[..., None], frow, rows)
        w = jnp.where(inside[..., None], fr.weight[off], w)
        masks.append(inside)
    return rows, w, masks


def combine(featurized: tuple, hidden: tuple, params: dict, rows: Array, w: Array,
            masks: list[Array]) -> Array:
    """Gathered rows [..., F, D] with their weights [..., F] -> embeddings [..., D]: the weighted
    sum (padding ignored even if the scratch row holds a non-finite value), then each featurized
    type's encoder where its mask [...] is set."""
    x = jnp.sum(jnp.where(w[..., None] > 0, w[..., None] * rows, 0.0), axis=-2)
    for (t, _), h, m in zip(featurized, hidden, masks, strict=True):
        if h:
            x = jnp.where(m[..., None], encode(params, t, h, x), x)
    return x


def derive_rows(rows: Array, fr: FeatureRows, params: dict, t: int, hidden: int, renorm: Any
                ) -> Array:
    """Embeddings [B, D] of B entities of type t from their gathered feature rows [B, F, D]
    (float32; padding's rows may hold anything) and FeatureRows [B, F]: the weighted mean of the
    rows after `renorm` (the model's max_norm, as training applies it), then t's encoder."""
    x = jnp.sum(jnp.where((fr.weight > 0)[..., None], fr.weight[..., None] * renorm(rows), 0.0),
                axis=-2)
    return encode(params, t, hidden, x)


def expand_pieces(spec: Any, layout: Any, pieces: list, num_rows: int) -> tuple[list, list]:
    """The step's gathered id blocks (a list of (lhs ids, rhs ids) pairs) with every id expanded
    (`expand`): (pieces of row ids [..., F], per block (weights, masks) for `combine_pieces`);
    (pieces, None) unchanged without featurized types."""
    if not spec.featurized:
        return pieces, None
    ex = [[expand(spec.featurized, layout.lo, layout.n, layout.feat, i, num_rows) for i in pair]
          for pair in pieces]
    return [tuple(e[0] for e in pair) for pair in ex], [tuple(e[1:] for e in pair) for pair in ex]


def combine_pieces(spec: Any, params: dict, blocks: list, mix: list) -> list:
    """Gathered blocks [..., F, D] -> the embeddings the loss sees [..., D] (`combine`); the
    blocks unchanged when `mix` is None (no featurized type)."""
    if mix is None:
        return blocks
    return [tuple(combine(spec.featurized, spec.encoder_hidden, params, b, w, m)
                  for b, (w, m) in zip(pair, mx, strict=True))
            for pair, mx in zip(blocks, mix, strict=True)]
