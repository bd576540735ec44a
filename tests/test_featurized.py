"""Featurized entity types and frozen types/relations in the jitted step (core/features.py,
core/frozen.py): gradients reach the feature rows (against float64 finite differences of a numpy
loss), the encoder is the flax MLP the spec says, frozen rows and parameters stay bit-identical;
and the features file's errors (data/features.py) are one line each."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_of

from jgraph.core.features import FeatureRows, combine, encoder_class, expand
from jgraph.core.model import Batch, Layout
from jgraph.core.step import NegativeSpec, Tables, init_state, make_train_block

E, V, D, LR = 6, 5, 4, 0.05
# entity -> (feature ids, weights): entity 5 has no feature (the zero embedding)
FEATS = [([0, 1], [1.0, 1.0]), ([2], [1.0]), ([1, 3, 4], [2.0, 1.0, 1.0]), ([4, 0], [1.0, 3.0]),
         ([3], [1.0]), ([], [])]


def feature_rows() -> tuple[np.ndarray, np.ndarray]:
    ids = np.full((E, 3), -1, np.int32)
    w = np.zeros((E, 3), np.float32)
    for e, (f, ww) in enumerate(FEATS):
        ids[e, : len(f)] = f
        w[e, : len(f)] = np.asarray(ww) / max(sum(ww), 1e-9)
    return ids, w


def setup(encoder: int = 0, frozen_types=(), frozen_relations=(), operator="diagonal"):
    """Types: 0 featurized (E entities, rows [0, E): never used), 1 its features (rows [E, E + V)),
    2 a plain type (rows [E + V, E + V + 3)); relation 0: 0 -> 0, relation 1: 0 -> 2."""
    model = model_of(dimension=D, loss="softmax", num_types=3, operator_of_relation=[operator] * 2,
                     relation_types=np.array([[0, 0], [0, 2]]), featurized=((0, 1),),
                     encoder_hidden=(encoder,), frozen_types=frozen_types,
                     frozen_relations=frozen_relations)
    k = E + V + 3
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(k + 1, D)).astype(np.float32)
    emb[k] = 7.0  # the scratch row: padding must ignore it
    tables = Tables(jnp.asarray(emb), jnp.zeros(k + 1, jnp.float32), jnp.zeros(k + 1, jnp.int32))
    ids, w = feature_rows()
    layout = Layout(jnp.array([[0, 0], [E, E], [E + V, E + V]], jnp.int32),
                    jnp.array([[E, E], [V, V], [3, 3]], jnp.int32), None,
                    (FeatureRows(jnp.asarray(ids), jnp.asarray(w)),))
    return model, tables, layout, k


def one_batch(model, tables, layout, k, lhs, rhs, rel, row_update="sparse"):
    neg = NegativeSpec(num_uniform=0, use_batch=True, all_negs=False, sides=(True, True))
    step = make_train_block(model, neg, LR, LR, 1e-12, k, 1, row_update)
    state = init_state(model, 0, "threefry", LR, 1e-12)
    before = jax.tree_util.tree_map(np.array, state.params)
    block = Batch(*(jnp.asarray(np.asarray(a, dt).reshape(1, 1, -1)) for a, dt in
                    ((lhs, np.int32), (rhs, np.int32), (rel, np.int32), (np.ones(len(lhs)), np.float32))))
    state, out, stats = step(state, tables, block, jnp.int32(1), layout)
    return before, state, out, stats


def numpy_loss(ftab: np.ndarray, lhs, rhs, diag: np.ndarray) -> float:
    """float64 PBG softmax loss of one chunk (batch negatives, standard mode, diagonal operator,
    dot), entities the weighted means of their feature rows."""
    ids, w = feature_rows()
    x = np.einsum("ef,efd->ed", w, ftab[np.maximum(ids, 0)])
    a, b = x[lhs], x[rhs] * diag
    s = a @ b.T  # s[i, j] = c(x_i, g(y_j))
    total = 0.0
    for i in range(len(lhs)):
        for negs in (np.delete(s[:, i], i), np.delete(s[i, :], i)):  # lhs side, rhs side
            total += np.logaddexp(s[i, i], np.logaddexp.reduce(negs)) - s[i, i]
    return total


@pytest.mark.parametrize("row_update", ["sparse", "dense"])
def test_gradients_reach_feature_rows(row_update):
    model, tables, layout, k = setup()
    lhs, rhs = [0, 2, 3], [1, 4, 5]  # entity 5 has no feature; feature 1 shared by 0 and 2
    emb0 = np.array(tables.emb)
    _, state, out, stats = one_batch(model, tables, layout, k, lhs, rhs, [0, 0, 0], row_update)
    emb1, acc = np.array(out.emb), np.array(out.acc)
    ftab = emb0[E : E + V].astype(np.float64)
    diag = np.ones(D)
    assert float(stats["loss"]) == pytest.approx(numpy_loss(ftab, lhs, rhs, diag), rel=1e-5)
    # row Adagrad from a zero accumulator: acc = mean(g^2), row -= lr g / sqrt(acc): g recovered
    g_step = -(emb1[E : E + V] - emb0[E : E + V]) * np.sqrt(acc[E : E + V])[:, None] / LR
    g_ref = np.zeros_like(ftab)
    h = 1e-6
    for f in range(V):
        for d in range(D):
            up, down = ftab.copy(), ftab.copy()
            up[f, d] += h
            down[f, d] -= h
            g_ref[f, d] = (numpy_loss(up, lhs, rhs, diag) - numpy_loss(down, lhs, rhs, diag)) / (2 * h)
    np.testing.assert_allclose(g_step, g_ref, rtol=2e-3, atol=1e-5)
    assert np.abs(g_ref).min(1).max() > 1e-3  # every feature of the batch got a gradient
    # the featurized type's own rows and the plain type's are never touched
    np.testing.assert_array_equal(emb1[:E], emb0[:E])
    np.testing.assert_array_equal(emb1[E + V : k], emb0[E + V : k])


def test_expand_and_combine_by_hand():
    _, tables, layout, k = setup()
    ids = jnp.array([[2, E + V + 1, 5]])  # a featurized entity, a plain row, a bare entity
    rows, w, masks = expand(((0, 1),), layout.lo, layout.n, layout.feat, ids, k)
    np.testing.assert_array_equal(np.array(rows)[0], [[E + 1, E + 3, E + 4], [E + V + 1, k, k],
                                                      [k, k, k]])
    np.testing.assert_allclose(np.array(w)[0], [[0.5, 0.25, 0.25], [1, 0, 0], [0, 0, 0]])
    np.testing.assert_array_equal(np.array(masks[0])[0], [True, False, True])
    x = np.array(combine(((0, 1),), (0,), {}, tables.emb[rows], w, masks))[0]
    emb = np.array(tables.emb)
    np.testing.assert_allclose(x[0], 0.5 * emb[E + 1] + 0.25 * emb[E + 3] + 0.25 * emb[E + 4], rtol=1e-6)
    np.testing.assert_array_equal(x[1], emb[E + V + 1])
    np.testing.assert_array_equal(x[2], 0.0)


def test_encoder_is_the_flax_mlp_and_trains():
    model, tables, layout, k = setup(encoder=8)
    params = model.init_params()
    p = params["encoder"]["type0"]
    assert p["hidden"]["kernel"].shape == (D, 8) and p["out"]["kernel"].shape == (8, D)
    # a non-zero output layer, so the encoder is not the identity
    params["encoder"]["type0"]["out"]["kernel"] = jnp.asarray(
        np.random.default_rng(1).normal(size=(8, D)), jnp.float32)
    ids = jnp.array([[2, 3]])
    rows, w, masks = expand(((0, 1),), layout.lo, layout.n, layout.feat, ids, k)
    got = np.array(combine(((0, 1),), (8,), params, tables.emb[rows], w, masks))
    mean = np.einsum("bef,befd->bed", np.array(w), np.array(tables.emb[rows]))
    want = encoder_class()(8, D).apply({"params": params["encoder"]["type0"]}, jnp.asarray(mean))
    manual = mean + np.maximum(mean @ np.array(p["hidden"]["kernel"]) + np.array(p["hidden"]["bias"]), 0) \
        @ np.array(params["encoder"]["type0"]["out"]["kernel"])
    assert got.shape == (1, 2, D)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-5)
    np.testing.assert_allclose(got, manual, rtol=1e-4, atol=1e-6)
    # in the step: the encoder's parameters get gradients and the relation optimizer moves them
    before, state, _, _ = one_batch(model, tables, layout, k, [0, 2, 3], [1, 4, 2], [0, 0, 0])
    moved = jax.tree_util.tree_map(lambda a, b: float(np.abs(np.array(a) - b).max()),
                                   state.params["encoder"], before["encoder"])
    assert moved["type0"]["out"]["kernel"] > 0 and moved["type0"]["out"]["bias"] > 0


@pytest.mark.parametrize("row_update", ["sparse", "dense"])
def test_frozen_rows_and_relations_bit_identical(row_update):
    # every type frozen (the featurized type 0: its features and its encoder too), relation 1
    # frozen; rows of type 2 are gathered as tails
    model, tables, layout, k = setup(encoder=4, frozen_types=(0, 1, 2), frozen_relations=(1,))
    emb0, acc0 = np.array(tables.emb), np.array(tables.acc)
    before, state, out, _ = one_batch(model, tables, layout, k, [0, 2, 3], [E + V, E + V + 1, E + V + 2],
                                      [1, 1, 1], row_update)
    np.testing.assert_array_equal(np.array(out.emb)[:k], emb0[:k])
    np.testing.assert_array_equal(np.array(out.acc)[:k], acc0[:k])
    np.testing.assert_array_equal(np.array(state.params["rhs"]["diagonal"]["diagonal"])[1],
                                  before["rhs"]["diagonal"]["diagonal"][1])
    jax.tree_util.tree_map(np.testing.assert_array_equal, state.params["encoder"], before["encoder"])
    # unfrozen: the same batch moves the features' rows, type 2's rows, relation 1 and the encoder
    model, tables, layout, k = setup(encoder=4)
    before, state, out, _ = one_batch(model, tables, layout, k, [0, 2, 3], [E + V, E + V + 1, E + V + 2],
                                      [1, 1, 1], row_update)
    assert np.abs(np.array(out.emb)[E + V : k] - emb0[E + V : k]).min(1).max() > 0
    assert np.abs(np.array(out.emb)[E : E + V] - emb0[E : E + V]).max() > 0
    assert np.abs(np.array(state.params["rhs"]["diagonal"]["diagonal"])[1] - 1).max() > 0
    assert np.abs(np.array(state.params["encoder"]["type0"]["out"]["kernel"])).max() > 0
