"""Comparators (PBG `model.py` semantics). pos: [C, P, D] x [C, P, D] -> [C, P];
neg: [C, P, D] x [C, N, D] -> [C, P, N] (the products by `jgraph.core.scorer.neg_dot`, in bfloat16
where model.compute_dtype asks for it)."""

from __future__ import annotations

import jax.numpy as jnp

from jgraph.core.scorer import COMPARATORS, Comparator, neg_dot


def _identity(x):
    return x


def _dot_pos(a, b):
    return jnp.sum(a * b, axis=-1)


COMPARATORS.register("dot")(Comparator(prepare=_identity, pos=_dot_pos, neg=neg_dot))


def _normalize(x):
    # PBG multiplies by the reciprocal norm; the floor keeps all-zero rows (e.g. padding) finite.
    sq = jnp.sum(x * x, axis=-1, keepdims=True)
    return x * jnp.where(sq > 0, jnp.reciprocal(jnp.sqrt(jnp.maximum(sq, 1e-30))), 0.0)


COMPARATORS.register("cos")(Comparator(prepare=_normalize, pos=_dot_pos, neg=neg_dot))


def _sq_dist_pos(a, b):
    d = a - b
    return jnp.sum(d * d, axis=-1)


def _sq_dist_neg(a, negs):
    # ||a||^2 - 2 a.n + ||n||^2, as one batched matmul (PBG uses baddbmm the same way).
    a2 = jnp.sum(a * a, axis=-1)[..., :, None]
    n2 = jnp.sum(negs * negs, axis=-1)[..., None, :]
    return jnp.maximum(a2 + n2 - 2.0 * neg_dot(a, negs), 0.0)


COMPARATORS.register("squared_l2")(
    Comparator(
        prepare=_identity,
        pos=lambda a, b: -_sq_dist_pos(a, b),
        neg=lambda a, negs: -_sq_dist_neg(a, negs),
    )
)

COMPARATORS.register("l2")(
    Comparator(
        prepare=_identity,
        pos=lambda a, b: -jnp.sqrt(jnp.maximum(_sq_dist_pos(a, b), 1e-30)),
        neg=lambda a, negs: -jnp.sqrt(jnp.maximum(_sq_dist_neg(a, negs), 1e-30)),
    )
)
