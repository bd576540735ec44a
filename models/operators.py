"""Relation operators (PBG `operators.py` semantics); each starts as the identity.

Shapes: params leaves [R, ...]; `rel` int [S] broadcastable against x's leading dims; x [..., D].
"""

from __future__ import annotations

import jax.numpy as jnp

from jgraph.core.scorer import OPERATORS, Operator


def _no_params(num_relations: int, dim: int) -> dict:
    return {}


def _identity(params, rel, x):
    return x


OPERATORS.register("none")(Operator(init=_no_params, apply=_identity))


def _translation_init(num_relations: int, dim: int) -> dict:
    return {"translation": jnp.zeros((num_relations, dim), jnp.float32)}


def _translation_apply(params, rel, x):
    return x + params["translation"][rel]


OPERATORS.register("translation")(
    Operator(
        init=_translation_init,
        apply=_translation_apply,
        reg_params=lambda params, rel: params["translation"][rel],
    )
)


def _diagonal_init(num_relations: int, dim: int) -> dict:
    return {"diagonal": jnp.ones((num_relations, dim), jnp.float32)}


def _diagonal_apply(params, rel, x):
    return x * params["diagonal"][rel]


OPERATORS.register("diagonal")(
    Operator(
        init=_diagonal_init,
        apply=_diagonal_apply,
        reg_params=lambda params, rel: params["diagonal"][rel],
    )
)


def _complex_init(num_relations: int, dim: int) -> dict:
    if dim % 2:
        raise ValueError(f"complex_diagonal needs an even dimension, got {dim}")
    half = dim // 2
    return {
        "real": jnp.ones((num_relations, half), jnp.float32),
        "imag": jnp.zeros((num_relations, half), jnp.float32),
    }


def _complex_apply(params, rel, x):
    half = x.shape[-1] // 2
    re, im = x[..., :half], x[..., half:]
    r_re, r_im = params["real"][rel], params["imag"][rel]
    return jnp.concatenate([re * r_re - im * r_im, re * r_im + im * r_re], axis=-1)


def _complex_reg(params, rel):
    return jnp.concatenate([params["real"][rel], params["imag"][rel]], axis=-1)


OPERATORS.register("complex_diagonal")(
    Operator(init=_complex_init, apply=_complex_apply, reg_params=_complex_reg, complex=True)
)


def _linear_init(num_relations: int, dim: int) -> dict:
    eye = jnp.eye(dim, dtype=jnp.float32)
    return {"matrix": jnp.broadcast_to(eye, (num_relations, dim, dim))}


def _linear_apply(params, rel, x):
    return jnp.einsum("...ij,...j->...i", params["matrix"][rel], x)


OPERATORS.register("linear")(Operator(init=_linear_init, apply=_linear_apply))


def _affine_init(num_relations: int, dim: int) -> dict:
    return {**_linear_init(num_relations, dim), **_translation_init(num_relations, dim)}


def _affine_apply(params, rel, x):
    return _linear_apply(params, rel, x) + params["translation"][rel]


OPERATORS.register("affine")(Operator(init=_affine_init, apply=_affine_apply))
