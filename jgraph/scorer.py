"""The scorer interfaces: Operator, Comparator, Loss, Regularizer, and their registries.

Each scorer is a NamedTuple of pure jnp functions, registered by name in a `Registry`. The engine
never imports a particular scorer; `models/` (or a researcher's module listed in `plugins`) fills
the registries. Shapes: C chunks, P positives per chunk, N negatives per chunk, D dimension,
R relations.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax.numpy as jnp

from jgraph.registry import Registry

Array = Any  # jax.Array; kept loose so numpy references can call the same functions
Params = Any  # a pytree whose leaves have a leading relation axis [R, ...]


class Operator(NamedTuple):
    """A relation operator g_r applied to entity embeddings.

    init(num_relations, dim) -> params: a dict of arrays with leading axis R, initialised so the
        operator starts as the identity (PBG).
    apply(params, rel, x) -> y: rel int [S] broadcastable against x's leading shape; x [..., D];
        y [..., D]. Parameters are gathered per relation id.
    reg_params(params, rel) -> [S, k] parameters to penalise with N3 (None: nothing to penalise).
    complex: the embedding is (real half, imaginary half); N3 then uses complex moduli.
    """

    init: Callable[[int, int], Params]
    apply: Callable[[Params, Array, Array], Array]
    reg_params: Callable[[Params, Array], Array] | None = None
    complex: bool = False


class Comparator(NamedTuple):
    """Compares prepared embeddings.

    prepare(x [..., D]) -> [..., D]: applied once to every embedding before comparing (cos
        normalises here).
    pos(a [C, P, D], b [C, P, D]) -> [C, P]: score of matched pairs.
    neg(a [C, P, D], negs [C, N, D]) -> [C, P, N]: every positive of a chunk against the chunk's
        negatives.
    """

    prepare: Callable[[Array], Array]
    pos: Callable[[Array, Array], Array]
    neg: Callable[[Array, Array], Array]


class Loss(NamedTuple):
    """fn(pos [...], neg [..., N], neg_valid bool [..., N], margin) -> per-positive loss [...].

    Invalid negatives (the positive itself, padding) must not contribute.
    """

    fn: Callable[[Array, Array, Array, float], Array]


class Regularizer(NamedTuple):
    """fn(x [..., D], complex: bool) -> penalty per leading index [...] (summed by the engine)."""

    fn: Callable[[Array, bool], Array]


OPERATORS: Registry[Operator] = Registry("operator")
COMPARATORS: Registry[Comparator] = Registry("comparator")
LOSSES: Registry[Loss] = Registry("loss")
REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


def with_bias(base: Comparator) -> Comparator:
    """PBG `bias=True`: coordinate 0 is a bias added to every score; `base` compares the rest."""

    def prepare(x):
        return jnp.concatenate([x[..., :1], base.prepare(x[..., 1:])], axis=-1)

    def pos(a, b):
        return base.pos(a[..., 1:], b[..., 1:]) + a[..., 0] + b[..., 0]

    def neg(a, negs):
        scores = base.neg(a[..., 1:], negs[..., 1:])
        return scores + a[..., 0][..., :, None] + negs[..., 0][..., None, :]

    return Comparator(prepare=prepare, pos=pos, neg=neg)


def comparator_for(name: str, bias: bool) -> Comparator:
    """The registered comparator `name`, wrapped with a bias coordinate when asked."""
    base = COMPARATORS.get(name)
    return with_bias(base) if bias else base
