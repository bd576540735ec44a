"""Rotation operators: RotatE (Sun et al. 2019) and QuatE (Zhang et al. 2019).

Both start as the identity (PBG's convention) and never scale an embedding: a relation is a
rotation, stored as angles (RotatE) or as a quaternion normalised to unit length when applied
(QuatE). Shapes: params leaves [R, ...]; `rel` int [S] broadcastable against x's leading dims;
x [..., D].

rotate  x = (real half, imaginary half), D even: each complex coordinate multiplied by
        e^{i theta_r}, theta [R, D/2] (zero: the identity). With the `l2` comparator the score is
        -|h o r - t|_2 over the D/2 complex coordinates (PyKEEN's RotatE); Sun et al.'s
        -sum_k |h_k r_k - t_k| (the moduli summed) is not a batched matrix product, so jgraph has no
        comparator for it (see experiments/rotate_fb15k237/README.md).
quate   x = four quarters (a, b, c, d), D divisible by 4: x (x) q_r / |q_r|, the Hamilton product
        with the relation's unit quaternion per coordinate; q [R, D/4, 4] starts as (1, 0, 0, 0).
        With the `dot` comparator: QuatE's <h (x) q, t> up to which side the rotation acts on
        (right multiplication by a unit quaternion is orthogonal, its transpose multiplies by the
        conjugate).
"""

from __future__ import annotations

import jax.numpy as jnp

from jgraph.core.scorer import OPERATORS, Operator


def _rotate_init(num_relations: int, dim: int) -> dict:
    if dim % 2:
        raise ValueError(f"rotate needs an even dimension (real and imaginary halves), got {dim}")
    return {"phase": jnp.zeros((num_relations, dim // 2), jnp.float32)}


def _rotate_apply(params, rel, x):
    half = x.shape[-1] // 2
    re, im = x[..., :half], x[..., half:]
    theta = params["phase"][rel]
    c, s = jnp.cos(theta), jnp.sin(theta)
    return jnp.concatenate([re * c - im * s, re * s + im * c], axis=-1)


# the phases are not penalised: a rotation has modulus 1 whatever its angle
OPERATORS.register("rotate")(Operator(init=_rotate_init, apply=_rotate_apply, complex=True))


def _quate_init(num_relations: int, dim: int) -> dict:
    if dim % 4:
        raise ValueError(f"quate needs a dimension divisible by 4 (quaternion parts), got {dim}")
    q = jnp.zeros((num_relations, dim // 4, 4), jnp.float32)
    return {"quaternion": q.at[..., 0].set(1.0)}


def _quate_apply(params, rel, x):
    k = x.shape[-1] // 4
    a, b, c, d = (x[..., i * k : (i + 1) * k] for i in range(4))
    q = params["quaternion"][rel]  # [..., D/4, 4]
    q = q * jnp.reciprocal(jnp.sqrt(jnp.maximum(jnp.sum(q * q, axis=-1, keepdims=True), 1e-30)))
    w, x1, y1, z1 = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    # Hamilton product (a + b i + c j + d k)(w + x1 i + y1 j + z1 k)
    return jnp.concatenate([
        a * w - b * x1 - c * y1 - d * z1,
        a * x1 + b * w + c * z1 - d * y1,
        a * y1 - b * z1 + c * w + d * x1,
        a * z1 + b * y1 - c * x1 + d * w,
    ], axis=-1)


# not penalised either: only q's direction is used, and shrinking q would only make it unstable
OPERATORS.register("quate")(Operator(init=_quate_init, apply=_quate_apply))
