"""Row-wise Adagrad with duplicate ids, and one whole jitted training block, against dense references.

PBG's RowAdagrad (pbg-reference §3.7): the sparse gradient of a batch is coalesced (duplicate ids
summed), then per touched row  G += mean(g^2);  row -= lr * g / (sqrt(G) + eps).  Rows the batch does
not touch are left exactly as they were. Relation parameters use element-wise optax Adagrad:
  s += g^2;  p -= lr * g / sqrt(s + eps)  (0 where s == 0).
The training-block reference differentiates the same loss with respect to the WHOLE table (the
engine gathers unique rows instead) and applies the dense update, batch after batch.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_of

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.core.hashrng import batch_seed, derive
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.negatives import uniform_rows
from jgraph.core.optim import (
    claim_rows,
    relation_optimizer,
    row_adagrad,
    sparse_row_adagrad,
    stochastic_round,
)
from jgraph.core.step import NegativeSpec, Tables, init_state, make_train_block, use_dense_update

LR, REL_LR, EPS = 0.1, 0.05, 1e-10


def dense_row_adagrad(table, acc, grad, lr, eps):
    """float64 reference on the whole table: rows with zero gradient come out unchanged."""
    acc = acc + np.mean(grad * grad, axis=1)
    return table - lr * grad / (np.sqrt(acc) + eps)[:, None], acc


def _with_scratch(emb, acc):
    """The engine's working table: the rows plus one scratch row at the end."""
    return (jnp.asarray(np.vstack([emb, np.zeros((1, emb.shape[1]), emb.dtype)])),
            jnp.asarray(np.append(acc, np.zeros(1, acc.dtype))))


def _tables(emb, acc):
    return Tables(*_with_scratch(emb, acc), jnp.zeros((emb.shape[0] + 1,), jnp.int32))


def test_claim_rows_one_representative_per_id():
    """rep[i] is an occurrence of ids[i], the same for every occurrence of an id, and each distinct
    id has exactly one position with rep[i] == i, whatever the scratch held before."""
    ids = jnp.asarray([3, 1, 3, 0, 1, 1, 7, 3], jnp.int32)
    for stale in (np.zeros(11, np.int32), np.arange(11, dtype=np.int32)[::-1].copy()):
        _, rep = claim_rows(jnp.asarray(stale), ids)
        rep, got = np.asarray(rep), np.asarray(ids)
        assert rep.shape == got.shape and rep.dtype == np.int32
        np.testing.assert_array_equal(got[rep], got)  # an occurrence of the same id
        for v in np.unique(got):
            at = np.flatnonzero(got == v)
            assert len(set(rep[at].tolist())) == 1  # one representative per id
        first = rep == np.arange(len(got))
        assert sorted(got[first].tolist()) == sorted(set(got.tolist()))  # each id once


def test_row_adagrad_formula():
    """Hand numbers: g = [3, 4] -> mean(g^2) = 12.5; G = 1.5 + 12.5 = 14 -> step = lr * g / sqrt(14)."""
    rows, acc = jnp.asarray([[1.0, 2.0]]), jnp.asarray([1.5])
    new_rows, new_acc = row_adagrad(rows, acc, jnp.asarray([[3.0, 4.0]]), 0.5, 0.0)
    np.testing.assert_allclose(np.asarray(new_acc), [14.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new_rows), [[1 - 1.5 / 14**0.5, 2 - 2.0 / 14**0.5]], rtol=1e-6)


def test_sparse_row_adagrad_duplicates_match_dense():
    """Duplicate ids: per-occurrence gradients summed per row (at claim_rows' representative),
    updated once, scattered back; the other occurrences' writes go to the scratch row; untouched
    rows are bit-identical.
    Row 6 is touched twice with opposite gradients (sum 0): it must not move either."""
    rng = np.random.default_rng(0)
    n, d = 8, 4
    table = rng.standard_normal((n, d)).astype(np.float32)
    acc = rng.uniform(0.1, 1.0, n).astype(np.float32)
    ids = np.array([5, 2, 5, 7, 2, 5, 0, 6, 6], np.int32)
    g_occ = rng.standard_normal((ids.size, d)).astype(np.float32)
    g_occ[8] = -g_occ[7]

    _, rep = claim_rows(jnp.zeros((n + 1,), jnp.int32), jnp.asarray(ids))
    g = jnp.zeros((ids.size, d)).at[rep].add(jnp.asarray(g_occ))  # summed at the representative
    target = jnp.where(rep == jnp.arange(ids.size), jnp.asarray(ids), n)  # others: scratch row n
    scratch_table, scratch_acc = _with_scratch(table, acc)
    rows = scratch_table[jnp.asarray(ids)]
    new_table, new_acc = sparse_row_adagrad(scratch_table, scratch_acc, target, rows, g, LR, EPS)
    new_table, new_acc = new_table[:n], new_acc[:n]

    dense_g = np.zeros((n, d))
    np.add.at(dense_g, ids, g_occ.astype(np.float64))
    want_table, want_acc = dense_row_adagrad(table.astype(np.float64), acc.astype(np.float64), dense_g,
                                             LR, EPS)
    np.testing.assert_allclose(np.asarray(new_table), want_table, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(new_acc), want_acc, rtol=1e-5, atol=1e-7)
    untouched = np.setdiff1d(np.arange(n), ids)
    np.testing.assert_array_equal(np.asarray(new_table)[untouched], table[untouched])
    np.testing.assert_array_equal(np.asarray(new_acc)[untouched], acc[untouched])
    np.testing.assert_allclose(np.asarray(new_table)[6], table[6], atol=1e-6)
    np.testing.assert_allclose(np.asarray(new_acc)[6], acc[6], atol=1e-6)
    # the duplicated row 5 moved by ONE update with the summed gradient (not three updates)
    g5 = g_occ[[0, 2, 5]].sum(0).astype(np.float64)
    a5 = acc[5] + np.mean(g5**2)
    np.testing.assert_allclose(np.asarray(new_table)[5], table[5] - LR * g5 / np.sqrt(a5), rtol=1e-5)


# ---------------------------------------------------------------------------- the training block
K, D, R = 10, 4, 3  # table rows, dimension, relations (relation 2 is never used)

# two batches [S=2, C=2, P=3]; ids repeat within a chunk, across chunks and across sides;
# (1, 1, 2) is padding; rows 8 and 9 are never used. Standard mode: one relation per chunk.
BLOCK = Batch(
    lhs=np.array([[[1, 4, 1], [3, 0, -1]], [[2, 2, 7], [0, 6, 6]]], np.int32),
    rhs=np.array([[[4, 2, 2], [0, 5, -1]], [[7, 1, 2], [1, 1, 0]]], np.int32),
    rel=np.array([[[0, 0, 0], [1, 1, 0]], [[1, 1, 1], [0, 0, 0]]], np.int32),
    weight=np.array([[[1.0, 2.0, 1.0], [1.0, 0.5, 0.0]], [[1.0, 1.0, 1.0], [3.0, 1.0, 1.0]]], np.float32),
)
LAYOUT = Layout(jnp.zeros((1, 2), jnp.int32), jnp.full((1, 2), K, jnp.int32))  # diagonal bucket

CONFIGS = {
    # reciprocal (lhs and rhs operators), complex N3, no uniform negatives (nothing random), the
    # batch's loss computed as 2 groups of chunks (must change no number)
    "complex-logistic-n3-reciprocal-2groups": dict(operator="complex_diagonal", loss="logistic", reg=0.05,
                                                   max_norm=None, uniform=0, reciprocal=True, groups=2,
                                                   all_negs=False, row_update="sparse"),
    # standard; uniform negatives (the reference redraws them from the same key); max_norm renorm
    "translation-ranking-uniform-maxnorm": dict(operator="translation", loss="ranking", reg=0.0,
                                                max_norm=1.2, uniform=2, reciprocal=False, groups=1,
                                                all_negs=False, row_update="sparse"),
    # all_negs: every row of the partition is a negative (the dense path of the step)
    "diagonal-softmax-allnegs": dict(operator="diagonal", loss="softmax", reg=0.0, max_norm=None, uniform=0,
                                     reciprocal=False, groups=1, all_negs=True, row_update="auto"),
}
# the sparse configurations again with training.row_update=dense: gradients summed into a
# table-sized buffer, Adagrad over the touched rows of the whole table
CONFIGS |= {f"{name}-dense": c | {"row_update": "dense"} for name, c in list(CONFIGS.items())
            if not c["all_negs"]}


def _model(cfg) -> Model:
    return model_of(dimension=D, operator_of_relation=[cfg["operator"]] * R, relation_types=np.zeros((R, 2)),
                    relation_weight=np.array([1.0, 2.0, 1.0]), loss=cfg["loss"], margin=0.5,
                    regularization_coef=cfg["reg"], reciprocal=cfg["reciprocal"], max_norm=cfg["max_norm"])


def _start(model: Model, seed: int):
    """Fresh (state, tables): perturbed relation params, random rows, nonzero accumulators."""
    rng = np.random.default_rng(seed)
    state = init_state(model, seed=7, rng_impl="threefry", relation_lr=REL_LR, eps=EPS)
    params = jax.tree_util.tree_map(
        lambda p: p + jnp.asarray(0.3 * rng.standard_normal(p.shape), jnp.float32), state.params)
    state = state._replace(params=params, opt_state=relation_optimizer(REL_LR, EPS).init(params))
    emb = rng.standard_normal((K, D)).astype(np.float32)
    acc = rng.uniform(0.0, 0.5, K).astype(np.float32)
    return state, emb, acc


def _renorm(rows, max_norm):
    if max_norm is None:
        return rows
    norm = np.linalg.norm(rows, axis=-1, keepdims=True)
    return rows * np.minimum(1.0, max_norm / np.maximum(norm, 1e-12))


_GRADS: dict = {}


def _batch_loss(model: Model, u: int, all_negs: bool, on: tuple[bool, bool] = (True, True)):
    """A batch's (loss, stats) as a function of the whole table and the params (`on`: which sides
    have negatives)."""

    def loss(tab, prm, batch, lhs_ids, rhs_ids, ul, ur):
        ex = (None, None, None, None)
        if u:
            ones = jnp.ones((ul.shape[0], 1, u), bool)
            ex = (tab[ul], tab[ur], ones, ones)
        if all_negs:  # every row (the whole table is the partition) but the positive's own
            rows = jnp.arange(K)
            ex = (tab, tab, lhs_ids[..., None] != rows, rhs_ids[..., None] != rows)
        sides = model.score(prm, tab[lhs_ids], tab[rhs_ids], batch, *ex, not all_negs, on)
        return model.loss(*sides, batch)

    return loss


def _reference_grad(model: Model, u: int, all_negs: bool, on: tuple[bool, bool] = (True, True)):
    """jit(value_and_grad) of `_batch_loss`."""
    if (id(model), on) not in _GRADS:
        loss = _batch_loss(model, u, all_negs, on)
        _GRADS[id(model), on] = (model, jax.jit(jax.value_and_grad(loss, (0, 1), has_aux=True)))
    return _GRADS[id(model), on][1]


def reference_block(model: Model, cfg, state, emb, acc, num_batches):
    """Batch after batch: loss of the batch as a function of the whole table (and the relation
    params), dense gradient, dense row Adagrad (touched rows renormed first under max_norm), and
    hand-written element-wise Adagrad on the relation params."""
    table, acc = emb.astype(np.float64), acc.astype(np.float64)
    params = jax.tree_util.tree_map(lambda p: np.asarray(p, np.float64), state.params)
    sos = jax.tree_util.tree_map(np.zeros_like, params)
    u = cfg["uniform"]
    on = cfg.get("sides", (True, True))
    totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}
    for b in range(num_batches):
        batch = Batch(*(jnp.asarray(a[b]) for a in BLOCK))
        valid = np.asarray(batch.lhs) >= 0
        lhs_ids = np.where(valid, BLOCK.lhs[b], 0)  # padding reads row lo = 0 (weight 0 anyway)
        rhs_ids = np.where(valid, BLOCK.rhs[b], 0)
        touched = [lhs_ids.ravel(), rhs_ids.ravel()]
        ul = ur = None
        if u:
            seed = batch_seed(state.key, jnp.int32(b))
            k_l, k_r = derive(seed, 0), derive(seed, 1)
            lo, n = jnp.zeros(2, jnp.int32), jnp.full(2, K, jnp.int32)
            ul, ur = np.asarray(uniform_rows(k_l, lo, n, u)), np.asarray(uniform_rows(k_r, lo, n, u))
            touched += [x.ravel() for x, side_on in ((ul, on[0]), (ur, on[1])) if side_on]  # drawn rows
        touched = np.arange(K) if cfg["all_negs"] else np.unique(np.concatenate(touched))
        table[touched] = _renorm(table[touched], cfg["max_norm"])  # PBG renorms in place at lookup

        params32 = jax.tree_util.tree_map(lambda p: jnp.asarray(p, jnp.float32), params)
        (_, stats), (g_tab, g_prm) = _reference_grad(model, u, cfg["all_negs"], on)(
            jnp.asarray(table, jnp.float32), params32, batch, lhs_ids, rhs_ids, ul, ur)
        g_tab = np.asarray(g_tab, np.float64)
        assert np.all(g_tab[np.setdiff1d(np.arange(K), touched)] == 0)
        table, acc = dense_row_adagrad(table, acc, g_tab, LR, EPS)
        g_prm = jax.tree_util.tree_map(lambda g: np.asarray(g, np.float64), g_prm)
        sos = jax.tree_util.tree_map(lambda s, g: s + g * g, sos, g_prm)
        params = jax.tree_util.tree_map(
            lambda p, s, g: p - REL_LR * np.where(s > 0, g / np.sqrt(s + EPS), 0.0), params, sos, g_prm)
        for k in totals:
            totals[k] += float(stats[k])
    return table, acc, params, totals


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def compiled(request):
    cfg = CONFIGS[request.param]
    model = _model(cfg)
    neg = NegativeSpec(num_uniform=cfg["uniform"], use_batch=True, all_negs=cfg["all_negs"],
                       sides=(True, True))
    return cfg, model, make_train_block(model, neg, LR, REL_LR, EPS, K, groups=cfg["groups"],
                                        row_update=cfg["row_update"])


@pytest.mark.parametrize("num_batches", [1, 2])
def test_train_block_matches_dense_reference(compiled, num_batches):
    """The jitted block (gather unique rows -> grad -> combine duplicates -> row Adagrad -> scatter;
    optax Adagrad on relations) equals the dense whole-table reference after 1 and 2 batches."""
    cfg, model, train_block = compiled
    state, emb, acc = _start(model, seed=3)
    want_table, want_acc, want_params, want_stats = reference_block(model, cfg, state, emb, acc, num_batches)
    ref_state, _, _ = _start(model, seed=3)  # the engine's call donates its state and tables
    block = Batch(*(jnp.asarray(a) for a in BLOCK))
    new_state, tables, stats = train_block(ref_state, _tables(emb, acc), block,
                                           jnp.int32(num_batches), LAYOUT)
    got_table, got_acc = np.asarray(tables.emb)[:K], np.asarray(tables.acc)[:K]
    np.testing.assert_allclose(got_table, want_table, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got_acc, want_acc, rtol=1e-4, atol=1e-6)
    touched = np.unique(np.concatenate([BLOCK.lhs[:num_batches].ravel(), BLOCK.rhs[:num_batches].ravel()]))
    if not cfg["uniform"] and not cfg["all_negs"]:  # rows no batch touched: bit-identical
        untouched = np.setdiff1d(np.arange(K), touched)
        assert {8, 9} <= set(untouched.tolist())
        np.testing.assert_array_equal(got_table[untouched], emb[untouched])
        np.testing.assert_array_equal(got_acc[untouched], acc[untouched])
    for path_leaf, got_leaf in zip(jax.tree_util.tree_leaves_with_path(want_params),
                                   jax.tree_util.tree_leaves(new_state.params), strict=True):
        path, want_leaf = path_leaf
        np.testing.assert_allclose(np.asarray(got_leaf), want_leaf, rtol=1e-4, atol=1e-5, err_msg=str(path))
    assert int(new_state.step) == num_batches
    np.testing.assert_allclose(float(stats["loss"]), want_stats["loss"], rtol=1e-4)
    np.testing.assert_allclose(float(stats["reg"]), want_stats["reg"], rtol=1e-4, atol=1e-6)
    assert float(stats["count"]) == want_stats["count"] == [5.0, 11.0][num_batches - 1]
    assert float(stats["nonfinite"]) == 0.0


# one side's negatives off (negatives.disable_lhs_negs / disable_rhs_negs): the step draws and
# gathers the other side's uniform negatives only and scores one side; the dense reference scores
# the same side from the whole table with the same draws
ONE_SIDE = {
    # (diagonal: with a translation, x.(y' + t) - x.(y + t) leaves no gradient on t, and Adagrad
    # would blow its float32 noise up to a full step)
    "diagonal-ranking-uniform-maxnorm-no-lhs": CONFIGS["translation-ranking-uniform-maxnorm"]
    | {"operator": "diagonal", "sides": (False, True)},
    "complex-logistic-uniform-reciprocal-no-rhs": CONFIGS["complex-logistic-n3-reciprocal-2groups"]
    | {"uniform": 2, "groups": 1, "sides": (True, False)},
    "diagonal-softmax-allnegs-no-rhs": CONFIGS["diagonal-softmax-allnegs"] | {"sides": (True, False)},
}


@pytest.mark.parametrize("name", sorted(ONE_SIDE))
def test_one_side_negatives_match_dense_reference(name):
    cfg = ONE_SIDE[name]
    model = _model(cfg)
    neg = NegativeSpec(num_uniform=cfg["uniform"], use_batch=True, all_negs=cfg["all_negs"],
                       sides=cfg["sides"])
    train_block = make_train_block(model, neg, LR, REL_LR, EPS, K, groups=cfg["groups"],
                                   row_update=cfg["row_update"])
    state, emb, acc = _start(model, seed=3)
    want_table, want_acc, want_params, want_stats = reference_block(model, cfg, state, emb, acc, 2)
    # the reference depends on the sides: batch 0's loss (batch negatives only) with both is larger
    first = Batch(*(jnp.asarray(a[0]) for a in BLOCK))
    ids = [np.where(BLOCK.lhs[0] >= 0, a[0], 0) for a in (BLOCK.lhs, BLOCK.rhs)]
    one, both = (float(_batch_loss(model, 0, cfg["all_negs"], on)(jnp.asarray(emb), state.params, first,
                                                                   *ids, None, None)[1]["loss"])
                 for on in (cfg["sides"], (True, True)))
    assert both > 1.2 * one > 0, (both, one)
    new_state, tables, stats = train_block(_start(model, seed=3)[0], _tables(emb, acc),
                                           Batch(*(jnp.asarray(a) for a in BLOCK)), jnp.int32(2), LAYOUT)
    np.testing.assert_allclose(np.asarray(tables.emb)[:K], want_table, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(np.asarray(tables.acc)[:K], want_acc, rtol=1e-4, atol=1e-6)
    for want_leaf, got_leaf in zip(jax.tree_util.tree_leaves(want_params),
                                   jax.tree_util.tree_leaves(new_state.params), strict=True):
        np.testing.assert_allclose(np.asarray(got_leaf), want_leaf, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(float(stats["loss"]), want_stats["loss"], rtol=1e-4)
    assert float(stats["count"]) == 11.0


def float32_dot_precisions(lowered_text: str) -> list[str]:
    """The precision of every dot_general with float32 operands in a lowered StableHLO text."""
    out = []
    for line in lowered_text.splitlines():
        if "stablehlo.dot_general" in line and re.search(r"\(tensor<[^>]*xf32>, tensor<[^>]*xf32>\)", line):
            m = re.search(r"precision = \[(\w+), (\w+)\]", line)
            out.append(m.group(1) if m else "unspecified")
    return out


def test_train_block_multiplies_float32_in_float32(compiled):
    """Every float32 product of the step is traced at HIGHEST precision, even under a default that
    asks for less (JAX's own default lets recent GPUs use TensorFloat32)."""
    cfg, model, train_block = compiled
    state, emb, acc = _start(model, seed=3)
    block = Batch(*(jnp.asarray(a) for a in BLOCK))
    with jax.default_matmul_precision("bfloat16"):
        text = train_block.lower(state, _tables(emb, acc), block, jnp.int32(1), LAYOUT).as_text()
    got = float32_dot_precisions(text)
    assert got and set(got) == {"HIGHEST"}, got


def test_first_relation_step_is_sign_of_gradient(compiled):
    """Adagrad's first step from a zero accumulator moves each parameter by exactly -lr * sign(g)
    (g / sqrt(g^2)); relation 2 has no edge in the batch and must not move at all."""
    cfg, model, train_block = compiled
    state, emb, acc = _start(model, seed=4)
    before = jax.tree_util.tree_map(np.asarray, state.params)
    block = Batch(*(jnp.asarray(a) for a in BLOCK))
    tables = _tables(emb, acc)
    new_state, _, _ = train_block(state, tables, block, jnp.int32(1), LAYOUT)
    moved = 0
    after = jax.tree_util.tree_leaves(new_state.params)
    for b, a in zip(jax.tree_util.tree_leaves(before), after, strict=True):
        delta = np.abs(np.asarray(a) - b)
        np.testing.assert_array_equal(delta[2], 0.0)  # unused relation
        changed = delta > 1e-7
        np.testing.assert_allclose(delta[changed], REL_LR, rtol=1e-3)
        moved += int(changed.sum())
    if jax.tree_util.tree_leaves(before):
        assert moved > 0


def test_nonfinite_batch_updates_nothing(compiled):
    """A batch whose loss is not finite (a NaN row) counts as `nonfinite` and changes no accumulator,
    no relation parameter and no row (beyond max_norm's renormalisation at lookup)."""
    cfg, model, train_block = compiled
    state, emb, acc = _start(model, seed=5)
    emb[4] = np.nan  # row 4 is used by the first batch
    before = jax.tree_util.tree_map(np.asarray, state.params)
    block = Batch(*(jnp.asarray(a) for a in BLOCK))
    new_state, tables, stats = train_block(state, _tables(emb, acc), block,
                                           jnp.int32(1), LAYOUT)
    assert float(stats["nonfinite"]) == 1.0 and float(stats["loss"]) == 0.0
    np.testing.assert_array_equal(np.asarray(tables.acc)[:K], acc)
    after = jax.tree_util.tree_leaves(new_state.params)
    for b, a in zip(jax.tree_util.tree_leaves(before), after, strict=True):
        np.testing.assert_array_equal(np.asarray(a), b)
    got = np.asarray(tables.emb)[:K]
    renormed = _renorm(emb.astype(np.float64), cfg["max_norm"])
    for r in range(K):
        same = np.array_equal(got[r], emb[r], equal_nan=True)
        assert same or np.allclose(got[r], renormed[r], rtol=1e-6), f"row {r} moved"


def test_stochastic_rounding_to_bfloat16_is_unbiased_and_exact_in_float32() -> None:
    x = jnp.full((100_000,), 1 + 2**-10, jnp.float32)  # 1/8 of the way from 1 to the next bfloat16
    y = stochastic_round(x, jnp.bfloat16, jnp.uint32(0))
    assert y.dtype == jnp.bfloat16
    v = np.asarray(y.astype(jnp.float32))
    assert set(np.unique(v).tolist()) == {1.0, 1 + 2**-7}
    assert abs((v == 1 + 2**-7).mean() - 0.125) < 0.005  # rounded up with probability 1/8
    z = jnp.asarray(np.random.default_rng(0).normal(size=100_000).astype(np.float32))
    err = np.asarray(stochastic_round(z, jnp.bfloat16, jnp.uint32(1)).astype(jnp.float32)) - np.asarray(z)
    assert abs(err.mean()) < 1e-4 and np.all(np.abs(err) <= np.abs(np.asarray(z)) * 2**-7)
    assert stochastic_round(z, jnp.float32, jnp.uint32(2)) is z  # float32 tables: untouched


def test_auto_row_update_is_dense_where_a_batch_gathers_at_least_the_table():
    assert not use_dense_update("auto", 4_000, 1_000_000)  # the suite's d=100 rows
    assert use_dense_update("auto", 82_000, 14_541)  # FB15k-237 with 2000 uniform negatives
    assert use_dense_update("auto", 100, 100)
    assert use_dense_update("dense", 1, 1_000_000) and not use_dense_update("sparse", 10**6, 10)
