"""The scorer interfaces: Operator, Comparator, Loss, Regularizer, and their registries.

Each scorer is a NamedTuple of pure jnp functions, registered by name in a `Registry`. The engine
never imports a particular scorer; `models/` (or a researcher's module listed in `plugins`) fills
the registries. Shapes: C chunks, P positives per chunk, N negatives per chunk, D dimension,
R relations.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jgraph.core.registry import Registry

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
        negatives. `neg_dot` computes it (in bfloat16 where the run asks for it:
        model.compute_dtype).
    """

    prepare: Callable[[Array], Array]
    pos: Callable[[Array, Array], Array]
    neg: Callable[[Array, Array], Array]


class Loss(NamedTuple):
    """fn(pos [...], neg [..., N], neg_valid bool [..., N], margin) -> per-positive loss [...].

    Invalid negatives (the positive itself, padding) must not contribute.
    weighted(pos [...], neg [..., N], weights [..., N], margin) -> per-positive loss [...]: the
        same loss with its negatives' terms averaged with `weights` (>= 0, summing to 1 over the
        valid negatives, 0 on the others) instead of its own sum or mean; self-adversarial
        negative sampling (`loss_function`) calls it. None: the loss cannot be weighted.
    """

    fn: Callable[[Array, Array, Array, float], Array]
    weighted: Callable[[Array, Array, Array, float], Array] | None = None


def adversarial_weights(neg: Array, valid: Array, temperature: float) -> Array:
    """Self-adversarial sampling weights (Sun et al. 2019, eq. 4): softmax(temperature x score) over
    each positive's valid negatives, as constants (no gradient flows through them).
    neg [..., N], valid bool [..., N] -> float32 [..., N] (0 where invalid; all 0 when none is valid)."""
    z = jnp.where(valid, temperature * neg, -jnp.inf)
    top = jnp.max(z, axis=-1, keepdims=True)
    e = jnp.where(valid, jnp.exp(z - jnp.where(jnp.isfinite(top), top, 0.0)), 0.0)
    w = e / jnp.maximum(jnp.sum(e, axis=-1, keepdims=True), 1e-30)
    return jax.lax.stop_gradient(w)


def loss_function(name: str, adversarial_temperature: float = 0.0
                  ) -> Callable[[Array, Array, Array, float], Array]:
    """The registered loss `name` as fn(pos, neg, valid, margin); with a temperature > 0, its
    self-adversarial form: the negatives weighted by `adversarial_weights` (loss.adversarial_temperature)."""
    loss = LOSSES.get(name)
    if adversarial_temperature < 0:
        raise ValueError(f"loss.adversarial_temperature must be >= 0, got {adversarial_temperature}")
    if not adversarial_temperature:
        return loss.fn
    if loss.weighted is None:
        raise ValueError(f"loss {name!r} has no self-adversarial form (loss.adversarial_temperature "
                         f"needs one of: {', '.join(n for n in LOSSES.names() if LOSSES.get(n).weighted)})")
    weighted = loss.weighted

    def fn(pos, neg, valid, margin):
        return weighted(pos, neg, adversarial_weights(neg, valid, adversarial_temperature), margin)

    return fn


class Regularizer(NamedTuple):
    """fn(x [..., D], complex: bool) -> penalty per leading index [...] (summed by the engine)."""

    fn: Callable[[Array, bool], Array]


OPERATORS: Registry[Operator] = Registry("operator")
COMPARATORS: Registry[Comparator] = Registry("comparator")
LOSSES: Registry[Loss] = Registry("loss")
REGULARIZERS: Registry[Regularizer] = Registry("regularizer")


_NEG_DTYPE: ContextVar[Any] = ContextVar("jgraph_negatives_dtype", default=None)


def float32_matmuls(fn: Callable) -> Callable:
    """`fn` with its float32 matrix products computed in float32 (traced under
    jax.default_matmul_precision("float32")). JAX's default lets a recent NVIDIA GPU multiply
    float32 in TensorFloat32 (10-bit mantissas), so the same run would score differently on a GPU
    than on a CPU; jgraph's float32 is float32 on every backend (products of bfloat16 operands,
    model.compute_dtype=bfloat16, stay bfloat16 products summed in float32). On the CPU backend the
    compiled step is the same program either way. Every jitted function of jgraph that multiplies
    embeddings is wrapped in it."""

    @functools.wraps(fn)
    def wrapped(*args, **kwargs):
        with jax.default_matmul_precision("float32"):
            return fn(*args, **kwargs)

    return wrapped


@contextmanager
def negatives_in(dtype: Any):
    """Within this block `neg_dot` multiplies in `dtype` (bfloat16; None: float32). The training
    step traces its loss inside it with model.compute_dtype; evaluation never does."""
    token = _NEG_DTYPE.set(dtype)
    try:
        yield
    finally:
        _NEG_DTYPE.reset(token)


def neg_dot(a: Array, negs: Array) -> Array:
    """Every row of a chunk against every negative: a [C, P, D] x negs [C, N, D] -> [C, P, N]
    (negs may also be one shared [N, D]).

    Inside `negatives_in(bfloat16)` (training with model.compute_dtype=bfloat16): products of
    bfloat16-rounded operands summed in float32, and the same for the backward pass
    (`_bf16_neg_dot`); float32 in and out. Otherwise a float32 einsum."""
    if _NEG_DTYPE.get() == jnp.bfloat16:
        if a.ndim == 3 and negs.ndim == 3:
            return _bf16_neg_dot(a, negs)
        return jnp.einsum("...pd,...nd->...pn", a.astype(jnp.bfloat16), negs.astype(jnp.bfloat16),
                          preferred_element_type=jnp.float32)
    return jnp.einsum("...pd,...nd->...pn", a, negs)


def _row_major_swap(x: Array) -> Array:
    """[C, A, B] -> [C, B, A], materialised row-major. A plain swapaxes is folded into the dot
    that reads it (contracting over the middle axis), a form XLA's CPU backend does not run in
    bfloat16: it converts both operands to float32 (about 3x slower than the bfloat16 kernel). Going
    through a unit axis keeps the transpose a copy of its own."""
    c, a, b = x.shape
    return jnp.transpose(x.reshape(c, a, b, 1), (0, 2, 3, 1)).reshape(c, b, a)


@jax.custom_vjp
def _bf16_neg_dot(a: Array, negs: Array) -> Array:
    """float32 a [C, P, D] x negs [C, N, D] -> float32 [C, P, N], multiplied in bfloat16."""
    return _bf16_neg_dot_fwd(a, negs)[0]


def _bf16_neg_dot_fwd(a, negs):
    a, negs = a.astype(jnp.bfloat16), negs.astype(jnp.bfloat16)
    return jnp.einsum("cpd,cnd->cpn", a, negs, preferred_element_type=jnp.float32), (a, negs)


def _bf16_neg_dot_bwd(res, g):
    """float32 gradients from bfloat16 products: the score gradient g [C, P, N] rounded to
    bfloat16 times the saved bfloat16 operands, summed in float32."""
    a, negs = res
    g = g.astype(jnp.bfloat16)
    g_a = jnp.einsum("cpn,cnd->cpd", g, negs, preferred_element_type=jnp.float32)
    g_negs = jnp.einsum("cnp,cpd->cnd", _row_major_swap(g), a, preferred_element_type=jnp.float32)
    return g_a, g_negs


_bf16_neg_dot.defvjp(_bf16_neg_dot_fwd, _bf16_neg_dot_bwd)


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
