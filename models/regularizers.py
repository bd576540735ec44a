"""Regularizers. N3 (Lacroix et al. 2018): the sum of cubed absolute values, using complex moduli of
(real half, imaginary half) pairs when the operator is complex. x [..., D] -> [...]."""

from __future__ import annotations

import jax.numpy as jnp

from jgraph.core.scorer import REGULARIZERS, Regularizer


def _n3(x, complex_: bool):
    if complex_:
        half = x.shape[-1] // 2
        sq_modulus = x[..., :half] ** 2 + x[..., half:] ** 2
        return jnp.sum(sq_modulus**1.5, axis=-1)  # |z|^3 without sqrt's infinite slope at 0
    return jnp.sum(jnp.abs(x) ** 3, axis=-1)


REGULARIZERS.register("n3")(Regularizer(fn=_n3))
