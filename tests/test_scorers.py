"""Every registered scorer against a naive per-triple float64 reference (pykeen `tests/cases.py` idea).

The generic tests are parametrized over `OPERATORS.names()` x `COMPARATORS.names()` x bias x
reciprocal, so a newly registered operator or comparator is tested without touching this file. The
reference follows PBG's scoring semantics (pbg-reference §3.1-3.3):

  standard    score(x, r, y) = c(x, g_r(y)); lhs negatives c(x', g_r(y)); rhs negatives c(x, g_r(y'))
  reciprocal  lhs side c(x', h_r(y)) with h = params["rhs"]; rhs side c(y', g_r(x)) with g = params["lhs"]
  bias        coordinate 0 of both (operated) vectors is added; the comparator sees coordinates 1:
  cos         normalises after the operator
  N3 penalty  |.|^3 of the prepared positive embeddings + of the operator parameters (complex moduli
              for complex operators), zero at padding

Built-in operators and comparators have hand-written formulas below; one without a formula here is
checked against its own single-vector `apply` / single-pair `pos` (so batching, chunking, masking
and the extra negatives are still tested).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_of

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.core.model import Batch, Model
from jgraph.core.scorer import COMPARATORS, OPERATORS, comparator_for, float32_matmuls, neg_dot, negatives_in

D, R = 8, 3  # dimension (divisible by 4: complex operators halve it, quate quarters it), relations
C, P, U, K = 2, 4, 3, 5  # chunks, positives per chunk, uniform negatives per chunk, table rows
PADDED = [(1, 2), (1, 3)]  # (chunk, position) of padding: the tail of the last chunk
RTOL = ATOL = 1e-4

OPERATOR_NAMES = OPERATORS.names()
COMPARATOR_NAMES = COMPARATORS.names()


# ------------------------------------------------------------------------------ float64 references
class RefOperator(NamedTuple):
    apply: Callable  # (params float64 dict, r int, x [D]) -> [D]
    reg: Callable  # (params, r) -> flat parameters penalised by N3, or None


def _complex_apply(p, r, x):
    h = x.shape[0] // 2
    z = (x[:h] + 1j * x[h:]) * (p["real"][r] + 1j * p["imag"][r])
    return np.concatenate([z.real, z.imag])


def _rotate_apply(p, r, x):
    h = x.shape[0] // 2
    z = (x[:h] + 1j * x[h:]) * np.exp(1j * p["phase"][r])
    return np.concatenate([z.real, z.imag])


def _hamilton(x, y):
    """Quaternion products of arrays [4, k] of parts (a, b, c, d) -> [4, k]."""
    a1, b1, c1, d1 = x
    a2, b2, c2, d2 = y
    return np.stack([a1 * a2 - b1 * b2 - c1 * c2 - d1 * d2, a1 * b2 + b1 * a2 + c1 * d2 - d1 * c2,
                     a1 * c2 - b1 * d2 + c1 * a2 + d1 * b2, a1 * d2 + b1 * c2 - c1 * b2 + d1 * a2])


def _quate_apply(p, r, x):
    q = p["quaternion"][r]  # [D/4, 4]
    q = q / np.linalg.norm(q, axis=-1, keepdims=True)
    return _hamilton(x.reshape(4, -1), q.T).ravel()


REF_OPERATORS = {
    "none": RefOperator(lambda p, r, x: x, lambda p, r: None),
    "translation": RefOperator(lambda p, r, x: x + p["translation"][r], lambda p, r: p["translation"][r]),
    "diagonal": RefOperator(lambda p, r, x: x * p["diagonal"][r], lambda p, r: p["diagonal"][r]),
    "complex_diagonal": RefOperator(
        _complex_apply, lambda p, r: np.concatenate([p["real"][r], p["imag"][r]])
    ),
    "linear": RefOperator(lambda p, r, x: p["matrix"][r] @ x, lambda p, r: None),
    "affine": RefOperator(
        lambda p, r, x: p["matrix"][r] @ x + p["translation"][r], lambda p, r: None
    ),
    "rotate": RefOperator(_rotate_apply, lambda p, r: None),
    "quate": RefOperator(_quate_apply, lambda p, r: None),
}


def ref_operator(name: str) -> RefOperator:
    """The hand-written formula, or (new operator) its own apply on one vector at a time."""
    if name in REF_OPERATORS:
        return REF_OPERATORS[name]
    op = OPERATORS.get(name)

    def apply(p, r, x):
        jp = {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}
        out = op.apply(jp, jnp.asarray([r]), jnp.asarray(x[None], jnp.float32))
        return np.asarray(out[0], np.float64)

    def reg(p, r):
        if op.reg_params is None:
            return None
        jp = {k: jnp.asarray(v, jnp.float32) for k, v in p.items()}
        return np.asarray(op.reg_params(jp, jnp.asarray([r]))[0], np.float64)

    return RefOperator(apply, reg)


def _unit(x):
    n = np.linalg.norm(x)
    return x / n if n > 0 else x


REF_PREPARE = {"cos": _unit}
REF_COMPARE = {  # on prepared vectors
    "dot": lambda a, b: a @ b,
    "cos": lambda a, b: a @ b,
    "l2": lambda a, b: -np.linalg.norm(a - b),
    "squared_l2": lambda a, b: -np.sum((a - b) ** 2),
}


def ref_prepare(name: str, bias: bool, x: np.ndarray) -> np.ndarray:
    if name not in REF_COMPARE:  # a new comparator: its own prepare, one vector at a time
        return np.asarray(comparator_for(name, bias).prepare(jnp.asarray(x, jnp.float32)), np.float64)
    prep = REF_PREPARE.get(name, lambda v: v)
    return np.concatenate([x[:1], prep(x[1:])]) if bias else prep(x)


def ref_compare(name: str, bias: bool, a: np.ndarray, b: np.ndarray) -> float:
    """c(a, b) of two operated (not yet prepared) vectors."""
    a, b = ref_prepare(name, bias, a), ref_prepare(name, bias, b)
    if name not in REF_COMPARE:  # a new comparator: its own pos on a single pair
        comp = comparator_for(name, bias)
        one = lambda v: jnp.asarray(v[None, None], jnp.float32)
        return float(comp.pos(one(a), one(b))[0, 0])
    if bias:
        return a[0] + b[0] + REF_COMPARE[name](a[1:], b[1:])
    return REF_COMPARE[name](a, b)


def ref_n3(x: np.ndarray, complex_: bool) -> float:
    if complex_:
        h = x.shape[0] // 2
        return float(np.sum(np.abs(x[:h] + 1j * x[h:]) ** 3))
    return float(np.sum(np.abs(x) ** 3))


# ------------------------------------------------------------------------------ the case
class Case(NamedTuple):
    model: Model
    ops: list[str]  # operator name of each relation
    params: dict  # float32 jnp, as the engine takes them
    p64: dict  # the same values, float64 numpy
    lhs: np.ndarray  # float64 [C, P, D] raw rows
    rhs: np.ndarray
    rel: np.ndarray  # int [C, P]
    valid: np.ndarray  # bool [C, P]
    types: np.ndarray  # int [R, 2]
    uni_l: np.ndarray  # float64 [C, U, D] uniform lhs negatives
    uni_r: np.ndarray
    uni_l_valid: np.ndarray  # bool [C, 1, U]
    uni_r_valid: np.ndarray
    table: np.ndarray  # float64 [K, D] all rows (all_negs form)
    all_l_valid: np.ndarray  # bool [C, P, K]
    all_r_valid: np.ndarray
    batch: Batch


def _to_jnp(tree):
    if isinstance(tree, dict):
        return {k: _to_jnp(v) for k, v in tree.items()}
    return jnp.asarray(tree, jnp.float32)


def _to_np(tree):
    if isinstance(tree, dict):
        return {k: _to_np(v) for k, v in tree.items()}
    return np.asarray(tree, np.float64)


def make_case(operator: str | list[str], comparator: str, bias: bool, reciprocal: bool, *,
              global_emb: bool = False, relation_types: np.ndarray | None = None,
              chunk_rels: list[list[int]] | None = None, seed: int = 0) -> Case:
    """operator: one name for every relation, or one name per relation."""
    rng = np.random.default_rng(seed)
    types = np.zeros((R, 2), np.int32) if relation_types is None else np.asarray(relation_types, np.int32)
    num_types = int(types.max()) + 1
    ops = [operator] * len(types) if isinstance(operator, str) else list(operator)
    model = model_of(dimension=D, operator_of_relation=ops, relation_types=types, num_types=num_types,
                     comparator=comparator, bias=bias, regularization_coef=0.1, reciprocal=reciprocal,
                     global_emb=global_emb)
    # perturb the identity init so no operator is the identity
    noisy = lambda t: {k: noisy(v) for k, v in t.items()} if isinstance(t, dict) else (
        np.asarray(t, np.float64) + 0.5 * rng.standard_normal(np.shape(t)))
    p64 = _to_np(_to_jnp(noisy(model.init_params())))  # rounded to float32 values
    if chunk_rels is None:  # standard: one relation per chunk; reciprocal: mixed relations
        chunk_rels = [[1] * P, [2] * P] if not reciprocal else [[0, 2, 1, 2], [1, 0, 0, 0]]
    rel = np.array(chunk_rels, np.int32)
    valid = np.ones((C, P), bool)
    for c, p in PADDED:
        valid[c, p] = False
        rel[c, p] = 0  # what jgraph.plan.batches puts in padding
    ids = np.arange(C * P, dtype=np.int32).reshape(C, P)

    def rows(*shape):
        return _to_np(jnp.asarray(rng.standard_normal(shape), jnp.float32))

    return Case(
        model=model, ops=ops, params=_to_jnp(p64), p64=p64,
        lhs=rows(C, P, D), rhs=rows(C, P, D), rel=rel, valid=valid, types=types,
        uni_l=rows(C, U, D), uni_r=rows(C, U, D),
        uni_l_valid=rng.random((C, 1, U)) < 0.7, uni_r_valid=rng.random((C, 1, U)) < 0.7,
        table=rows(K, D),
        all_l_valid=rng.random((C, P, K)) < 0.7, all_r_valid=rng.random((C, P, K)) < 0.7,
        batch=Batch(
            lhs=jnp.asarray(np.where(valid, ids, -1)), rhs=jnp.asarray(np.where(valid, ids + 100, -1)),
            rel=jnp.asarray(rel), weight=jnp.asarray(valid, jnp.float32),
        ),
    )


def _glob(case: Case, x: np.ndarray, t: int) -> np.ndarray:
    return x + case.p64["global"][t] if case.model.global_emb else x


def _ref_g(case: Case):
    """g(side, r, x): relation r's operator (params[side]) on one vector."""
    return lambda side, r, x: ref_operator(case.ops[r]).apply(case.p64[side][case.ops[r]], r, x)


def reference(case: Case, comparator: str, bias: bool, extra: str):
    """Per-triple (pos [C, P], neg [C, P, N], valid [C, P, N]) of both sides, and the N3 penalty.

    extra: "uniform" ([C, U, D] negatives per chunk) or "all" (every row of the [K, D] table).
    """
    cmp = lambda a, b: ref_compare(comparator, bias, a, b)
    m = case.model
    g = _ref_g(case)
    complex_ = any(OPERATORS.get(k).complex for k in case.ops)  # embeddings: complex moduli
    out = {}
    penalty = np.zeros((C, P))
    for side in (0, 1):  # 0: lhs negatives, 1: rhs negatives
        pos = np.zeros((C, P))
        negs, valids = [], []
        for c in range(C):
            rc = case.rel[c, 0]  # the chunk's relation (standard mode: shared by the chunk)
            tl, tr = case.types[rc]
            if extra == "uniform":
                ex_l, ex_r = case.uni_l[c], case.uni_r[c]
                vl = np.broadcast_to(case.uni_l_valid[c], (P, U))
                vr = np.broadcast_to(case.uni_r_valid[c], (P, U))
            else:
                ex_l = ex_r = case.table
                vl, vr = case.all_l_valid[c], case.all_r_valid[c]
            ex_l = [_glob(case, e, tl) for e in ex_l]
            ex_r = [_glob(case, e, tr) for e in ex_r]
            row_negs, row_valid = [], []
            for i in range(P):
                r = case.rel[c, i]
                x = _glob(case, case.lhs[c, i], case.types[r, 0])
                y = _glob(case, case.rhs[c, i], case.types[r, 1])
                xs = [_glob(case, case.lhs[c, j], case.types[case.rel[c, j], 0]) for j in range(P)]
                ys = [_glob(case, case.rhs[c, j], case.types[case.rel[c, j], 1]) for j in range(P)]
                if not m.reciprocal and side == 0:  # c(x', g_r(y))
                    f = g("rhs", r, y)
                    pos[c, i] = cmp(x, f)
                    s = [cmp(xj, f) for xj in xs] + [cmp(e, f) for e in ex_l]
                elif not m.reciprocal:  # c(x, g_r(y'))
                    pos[c, i] = cmp(x, g("rhs", r, y))
                    s = [cmp(x, g("rhs", r, yj)) for yj in ys] + [cmp(x, g("rhs", rc, e)) for e in ex_r]
                elif side == 0:  # c(x', h_r(y))
                    f = g("rhs", r, y)
                    pos[c, i] = cmp(x, f)
                    s = [cmp(xj, f) for xj in xs] + [cmp(e, f) for e in ex_l]
                else:  # c(y', g_r(x))
                    f = g("lhs", r, x)
                    pos[c, i] = cmp(y, f)
                    s = [cmp(yj, f) for yj in ys] + [cmp(e, f) for e in ex_r]
                batch_valid = [j != i and case.valid[c, j] for j in range(P)]
                row_negs.append(s)
                row_valid.append(batch_valid + list((vl if side == 0 else vr)[i]))
                if side == 0 and case.valid[c, i]:
                    prep = lambda v: ref_prepare(comparator, bias, v)
                    reg_sides = ["rhs"] if not m.reciprocal else ["rhs", "lhs"]
                    embs = [prep(x), prep(g("rhs", r, y))]
                    if m.reciprocal:
                        embs += [prep(y), prep(g("lhs", r, x))]
                    penalty[c, i] = sum(ref_n3(e, complex_) for e in embs)
                    for rs in reg_sides:
                        pr = ref_operator(case.ops[r]).reg(case.p64[rs][case.ops[r]], r)
                        if pr is not None:
                            penalty[c, i] += ref_n3(pr, OPERATORS.get(case.ops[r]).complex)
            negs.append(row_negs)
            valids.append(row_valid)
        out[side] = (pos, np.array(negs), np.array(valids, bool))
    return out, penalty


def engine_scores(case: Case, extra: str):
    j = lambda a: jnp.asarray(a, jnp.float32)
    if extra == "uniform":
        ex = (j(case.uni_l), j(case.uni_r), jnp.asarray(case.uni_l_valid), jnp.asarray(case.uni_r_valid))
    else:
        ex = (j(case.table), j(case.table), jnp.asarray(case.all_l_valid), jnp.asarray(case.all_r_valid))
    return case.model.score(case.params, j(case.lhs), j(case.rhs), case.batch, *ex, True, (True, True))


def check_against_reference(case: Case, comparator, bias, extra):
    lhs_side, rhs_side, penalty = engine_scores(case, extra)
    ref, ref_pen = reference(case, comparator, bias, extra)
    rows = case.valid  # padding positives carry weight 0; their rows are not specified
    for side, got in ((0, lhs_side), (1, rhs_side)):
        pos, neg, valid = ref[side]
        n = P + (U if extra == "uniform" else K)
        assert got.neg.shape == got.valid.shape == (C, P, n)
        assert got.valid.dtype == bool
        np.testing.assert_array_equal(np.asarray(got.valid)[rows], valid[rows], err_msg=f"mask side {side}")
        np.testing.assert_allclose(np.asarray(got.pos)[rows], pos[rows], rtol=RTOL, atol=ATOL,
                                   err_msg=f"pos side {side}")
        # scores of masked entries are never used; compare the ones a loss reads
        np.testing.assert_allclose(np.asarray(got.neg)[rows][valid[rows]], neg[rows][valid[rows]],
                                   rtol=RTOL, atol=ATOL, err_msg=f"neg side {side}")
    np.testing.assert_allclose(np.asarray(penalty), ref_pen, rtol=RTOL, atol=ATOL, err_msg="N3 penalty")


SCORER_GRID = pytest.mark.parametrize("reciprocal", [False, True], ids=["standard", "reciprocal"])
BIAS_GRID = pytest.mark.parametrize("bias", [False, True], ids=["nobias", "bias"])


@SCORER_GRID
@BIAS_GRID
@pytest.mark.parametrize("comparator", COMPARATOR_NAMES)
@pytest.mark.parametrize("operator", OPERATOR_NAMES)
def test_score_matches_reference(operator, comparator, bias, reciprocal):
    """Model.score (batch + uniform negatives, and batch + all-rows negatives): pos/neg scores,
    the valid mask (self and padding columns excluded, extra masks passed through) and the N3
    penalty equal the per-triple reference."""
    case = make_case(operator, comparator, bias, reciprocal)
    check_against_reference(case, comparator, bias, "uniform")
    check_against_reference(case, comparator, bias, "all")


@SCORER_GRID
@BIAS_GRID
@pytest.mark.parametrize("comparator", COMPARATOR_NAMES)
@pytest.mark.parametrize("operator", OPERATOR_NAMES)
def test_query_scores_match_reference(operator, comparator, bias, reciprocal):
    """Model.query_scores (full ranking) scores every candidate exactly as training scores it:
    head queries c(x', g_r(y)) / c(x', h_r(y)), tail queries c(x, g_r(y')) / c(y', g_r(x))."""
    case = make_case(operator, comparator, bias, reciprocal, seed=1)
    check_query_scores(case, comparator, bias, mixed_rel=[0, 2, 1, 1, 0], one_rel=2)


def check_query_scores(case: Case, comparator, bias, mixed_rel: list[int], one_rel: int):
    """query_scores of 5 queries against the K table rows, both sides, against the reference.
    Queries share one relation where the model groups them by relation (standard tail queries)."""
    cmp = lambda a, b: ref_compare(comparator, bias, a, b)
    g = _ref_g(case)
    fixed = case.lhs.reshape(-1, D)[: len(mixed_rel)]
    cands = case.table
    b = fixed.shape[0]
    for side in (0, 1):
        if case.model.groups_queries_by_relation(side):
            rel = np.full(b, one_rel, np.int32)
        else:
            rel = np.array(mixed_rel, np.int32)
        fixed_types, cand_type = case.types[rel, 1 - side], case.types[rel[0], side]
        assert np.all(case.types[rel, side] == cand_type)  # one candidate type per query batch
        got = case.model.query_scores(
            case.params, jnp.asarray(fixed, jnp.float32), jnp.asarray(fixed_types), jnp.asarray(rel),
            jnp.asarray(cands, jnp.float32), jnp.int32(cand_type), side,
        )
        want = np.zeros((b, K))
        for q in range(b):
            r, f = rel[q], _glob(case, fixed[q], fixed_types[q])
            for n in range(K):
                e = _glob(case, cands[n], cand_type)
                if not case.model.reciprocal:
                    want[q, n] = cmp(e, g("rhs", r, f)) if side == 0 else cmp(f, g("rhs", r, e))
                else:
                    want[q, n] = cmp(e, g("rhs" if side == 0 else "lhs", r, f))
        np.testing.assert_allclose(np.asarray(got), want, rtol=RTOL, atol=ATOL, err_msg=f"side {side}")


@pytest.mark.parametrize("reciprocal", [False, True], ids=["standard", "reciprocal"])
@pytest.mark.parametrize("operator", OPERATOR_NAMES)
def test_global_embeddings_and_entity_types(operator, reciprocal):
    """global_emb adds the learned vector of each embedding's entity type before the operator,
    extra negatives and ranking candidates getting the type of their side (two entity types,
    typed relations), in training scores and in query scores alike."""
    types = np.array([[0, 1], [1, 0], [0, 0], [0, 1]], np.int32)
    chunk_rels = [[0, 0, 0, 0], [1, 1, 1, 1]] if not reciprocal else [[0, 3, 3, 0], [1, 1, 1, 1]]
    case = make_case(operator, "l2", False, reciprocal, global_emb=True, relation_types=types,
                     chunk_rels=chunk_rels, seed=2)
    assert np.abs(case.p64["global"]).min() > 0  # the global vectors are not zero
    check_against_reference(case, "l2", False, "uniform")
    check_against_reference(case, "l2", False, "all")
    check_query_scores(case, "l2", False, mixed_rel=[0, 3, 3, 0, 3], one_rel=3)  # relations t0 -> t1


@pytest.mark.parametrize("reciprocal", [False, True], ids=["standard", "reciprocal"])
@pytest.mark.parametrize("comparator", ["dot", "l2"])
@pytest.mark.parametrize("operator", OPERATOR_NAMES)
def test_self_negative_column(operator, comparator, reciprocal):
    """negatives.self_negative: one more negative per side, the query's own entity: the tail as a
    head c(y, g_r(y)) (reciprocal c(y, h_r(y))) and the head as a tail c(x, g_r(x)); valid only
    where the relation's lhs and rhs types are one (relation 1 here joins types 0 and 1) and the
    positive is not a self-loop (row ids equal: chunk 0 position 3 here). The other columns are
    unchanged."""
    types = np.array([[0, 0], [0, 1], [1, 1]], np.int32)
    case = make_case(operator, comparator, True, reciprocal, global_emb=True, relation_types=types,
                     seed=6)
    rhs_ids = np.asarray(case.batch.rhs).copy()
    rhs_ids[0, 3] = int(case.batch.lhs[0, 3])  # a self-loop positive
    batch = case.batch._replace(rhs=jnp.asarray(rhs_ids))
    j = lambda a: jnp.asarray(a, jnp.float32)
    args = (case.params, j(case.lhs), j(case.rhs), batch, j(case.uni_l), j(case.uni_r),
            jnp.asarray(case.uni_l_valid), jnp.asarray(case.uni_r_valid), True, (True, True))
    plain = case.model.score(*args)
    got = case.model.score(*args, self_negative=True)
    cmp = lambda a, b: ref_compare(comparator, True, a, b)
    g = _ref_g(case)
    want = np.zeros((2, C, P))
    ok = np.zeros((C, P), bool)
    for c in range(C):
        for i in range(P):
            r = case.rel[c, i]
            tl, tr = case.types[r]
            x, y = _glob(case, case.lhs[c, i], tl), _glob(case, case.rhs[c, i], tr)
            want[0, c, i] = cmp(y, g("rhs", r, y))
            want[1, c, i] = cmp(x, g("lhs" if reciprocal else "rhs", r, x))
            ok[c, i] = case.valid[c, i] and tl == tr and not (c == 0 and i == 3)
    assert ok.any() and (~ok & case.valid).any()  # both kinds of positive are in the case
    for side in (0, 1):
        before, after = plain[side], got[side]
        assert after.neg.shape == before.neg.shape[:2] + (before.neg.shape[2] + 1,)
        np.testing.assert_array_equal(np.asarray(after.valid[..., :-1]), np.asarray(before.valid))
        np.testing.assert_array_equal(np.asarray(after.neg[..., :-1]), np.asarray(before.neg))
        np.testing.assert_array_equal(np.asarray(after.valid[..., -1]), ok, err_msg=f"side {side}")
        np.testing.assert_allclose(np.asarray(after.neg[..., -1])[ok], want[side][ok], rtol=RTOL,
                                   atol=ATOL, err_msg=f"side {side}")


@pytest.mark.parametrize("reciprocal", [False, True], ids=["standard", "reciprocal"])
def test_uniform_only_and_a_disabled_side(reciprocal):
    """PBG's UNIFORM mode (num_batch_negs = 0): the negatives are the chunk's uniform rows only; and
    with the rhs side disabled (disable_rhs_negs) that side is not scored at all."""
    case = make_case("affine", "cos", True, reciprocal, seed=4)
    ref, _ = reference(case, "cos", True, "uniform")
    j = lambda a: jnp.asarray(a, jnp.float32)
    lhs_side, rhs_side, _ = case.model.score(
        case.params, j(case.lhs), j(case.rhs), case.batch, j(case.uni_l), j(case.uni_r),
        jnp.asarray(case.uni_l_valid), jnp.asarray(case.uni_r_valid), False, (True, False))
    assert rhs_side is None
    pos, neg, valid = ref[0]
    neg, valid, rows = neg[:, :, P:], valid[:, :, P:], case.valid  # drop the batch-negative columns
    assert lhs_side.neg.shape == (C, P, U)
    np.testing.assert_array_equal(np.asarray(lhs_side.valid)[rows], valid[rows])
    np.testing.assert_allclose(np.asarray(lhs_side.pos)[rows], pos[rows], rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(np.asarray(lhs_side.neg)[rows], neg[rows], rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("operator", OPERATOR_NAMES)
def test_operator_starts_as_identity(operator):
    """PBG: every operator's parameters are initialised so that it starts as the identity."""
    op = OPERATORS.get(operator)
    params = op.init(R, D)
    for leaf in params.values():
        assert leaf.shape[0] == R
    x = jnp.asarray(np.random.default_rng(0).standard_normal((R, 2, D)), jnp.float32)
    rel = jnp.arange(R)[:, None]
    np.testing.assert_allclose(np.asarray(op.apply(params, rel, x)), np.asarray(x), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("operator", [n for n in OPERATOR_NAMES if OPERATORS.get(n).complex])
def test_complex_operator_needs_even_dimension(operator):
    with pytest.raises(ValueError, match="even"):
        OPERATORS.get(operator).init(R, D + 1)


def test_builtin_scorers_are_registered():
    """The built-ins PBG defines are all there (the generic tests above iterate the registries)."""
    assert set(REF_OPERATORS) <= set(OPERATOR_NAMES)
    assert set(REF_COMPARE) <= set(COMPARATOR_NAMES)
    with pytest.raises(KeyError, match="known: .*translation"):
        OPERATORS.get("no_such_operator")


MIXABLE = [n for n in OPERATOR_NAMES if not OPERATORS.get(n).complex]


@pytest.mark.parametrize("reciprocal", [False, True], ids=["standard", "reciprocal"])
def test_a_different_operator_per_relation(reciprocal):
    """PBG's RelationSchema.operator: each relation may use its own operator; the model holds every
    kind's parameters for all relations and applies relation r's kind (N3 of its parameters too)."""
    ops = [MIXABLE[i % len(MIXABLE)] for i in (2, 1, 4)]  # now: linear, diagonal, quate
    assert len(set(ops)) > 1
    case = make_case(ops, "dot", False, reciprocal, seed=3)
    check_against_reference(case, "dot", False, "uniform")
    check_against_reference(case, "dot", False, "all")


def test_quaternion_reference_is_hamilton():
    """The reference's Hamilton product: i j = k, j i = -k, k i = j, and |x y| = |x| |y|."""
    one, i, j, k = (np.eye(4)[n][:, None] for n in range(4))
    np.testing.assert_array_equal(_hamilton(i, j), k)
    np.testing.assert_array_equal(_hamilton(j, i), -k)
    np.testing.assert_array_equal(_hamilton(k, i), j)
    np.testing.assert_array_equal(_hamilton(one, j), j)
    x, y = np.random.default_rng(0).standard_normal((2, 4, 1))
    assert np.isclose(np.linalg.norm(_hamilton(x, y)), np.linalg.norm(x) * np.linalg.norm(y))


@pytest.mark.parametrize("operator", ["rotate", "quate"])
def test_rotations_keep_lengths(operator):
    """RotatE keeps each complex coordinate's modulus, QuatE each quaternion's length, whatever the
    parameters (QuatE normalises its quaternions; RotatE's phases have no length)."""
    op = OPERATORS.get(operator)
    rng = np.random.default_rng(0)
    params = {k: jnp.asarray(3.0 * rng.standard_normal(v.shape), jnp.float32)
              for k, v in op.init(R, D).items()}
    x = rng.standard_normal((R, D))
    y = np.asarray(op.apply(params, jnp.arange(R), jnp.asarray(x, jnp.float32)), np.float64)
    parts = 2 if operator == "rotate" else 4
    norms = lambda v: np.linalg.norm(v.reshape(R, parts, -1), axis=1)
    np.testing.assert_allclose(norms(y), norms(x), rtol=1e-5)
    assert np.abs(y - x).max() > 0.1  # and it did move them


def test_complex_operator_cannot_be_mixed():
    complex_ops = [n for n in OPERATOR_NAMES if OPERATORS.get(n).complex]
    assert complex_ops
    with pytest.raises(ValueError, match="complex"):
        model_of(dimension=D, operator_of_relation=[complex_ops[0], MIXABLE[0]],
                 relation_types=np.zeros((2, 2)))


def test_bfloat16_neg_dot_and_its_gradient():
    """neg_dot inside negatives_in(bfloat16): float32 scores equal to the float32 product of the
    bfloat16-rounded operands; its gradients (custom backward: the score gradient rounded to
    bfloat16, one operand transposed on its own) equal float32 autodiff of that product to
    bfloat16 precision. Outside the block it is the float32 product."""
    rng = np.random.default_rng(0)
    a = jnp.asarray(rng.standard_normal((3, 5, 8)), jnp.float32)
    n = jnp.asarray(rng.standard_normal((3, 7, 8)), jnp.float32)
    w = jnp.asarray(rng.standard_normal((3, 5, 7)), jnp.float32)  # a loss's weights on the scores
    f64 = lambda x: np.asarray(x, np.float64)
    rounded = lambda x: f64(jnp.asarray(x, jnp.bfloat16))
    with negatives_in(jnp.bfloat16):
        got = neg_dot(a, n)
        g_a, g_n = jax.grad(lambda a, n: jnp.sum(jnp.tanh(neg_dot(a, n)) * w), (0, 1))(a, n)
    assert got.dtype == g_a.dtype == g_n.dtype == jnp.float32 and got.shape == (3, 5, 7)
    want = np.einsum("cpd,cnd->cpn", rounded(a), rounded(n))
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    exact = np.einsum("cpd,cnd->cpn", f64(a), f64(n))
    assert np.abs(np.asarray(got) - exact).max() > 1e-3  # it did round the operands
    np.testing.assert_allclose(np.asarray(neg_dot(a, n)), exact, rtol=1e-5, atol=1e-5)  # outside

    ra, rn = jnp.asarray(rounded(a), jnp.float32), jnp.asarray(rounded(n), jnp.float32)
    r_a, r_n = jax.grad(lambda a, n: jnp.sum(jnp.tanh(jnp.einsum("cpd,cnd->cpn", a, n)) * w),
                        (0, 1))(ra, rn)
    for got_g, want_g in ((g_a, r_a), (g_n, r_n)):
        scale = float(jnp.abs(want_g).max())
        np.testing.assert_allclose(np.asarray(got_g), np.asarray(want_g), rtol=0, atol=2e-2 * scale)


@pytest.mark.parametrize("comparator", COMPARATOR_NAMES)
def test_bfloat16_negatives_match_reference(comparator):
    """Model.score inside negatives_in(bfloat16): positives exact, negatives within bfloat16
    rounding of the float64 reference (both sides, bias; batch + uniform negatives, and batch +
    every row of the table as all_negs passes it, [K, D])."""
    case = make_case("diagonal", comparator, True, False, seed=5)
    for extra in ("uniform", "all"):
        with negatives_in(jnp.bfloat16):
            lhs_side, rhs_side, _ = engine_scores(case, extra)
        ref, _ = reference(case, comparator, True, extra)
        rows = case.valid
        for got, (pos, neg, valid) in ((lhs_side, ref[0]), (rhs_side, ref[1])):
            assert got.neg.dtype == jnp.float32
            np.testing.assert_allclose(np.asarray(got.pos)[rows], pos[rows], rtol=RTOL, atol=ATOL)
            sel = valid[rows]
            np.testing.assert_allclose(np.asarray(got.neg)[rows][sel], neg[rows][sel], rtol=2e-2,
                                       atol=2e-2 * np.abs(neg[rows][sel]).max(), err_msg=extra)


def test_float32_matmuls_sets_the_precision_of_what_it_traces():
    """Wrapped, a float32 product is traced at HIGHEST precision whatever the default (a product of
    bfloat16 operands is marked too; it has nothing finer to be computed in); unwrapped, the default
    applies (the wrapper is what changes it)."""
    a = jnp.ones((4, 8), jnp.float32)

    def f(x, y):
        return x @ y.T, x.astype(jnp.bfloat16) @ y.T.astype(jnp.bfloat16)

    with jax.default_matmul_precision("bfloat16"):
        wrapped = jax.jit(float32_matmuls(f)).lower(a, a).as_text()
        plain = jax.jit(f).lower(a, a).as_text()
    dots = [line for line in wrapped.splitlines() if "dot_general" in line]
    assert len(dots) == 2
    assert "precision = [HIGHEST, HIGHEST]" in dots[0] and "xf32>, tensor" in dots[0]
    assert "xbf16>, tensor" in dots[1]
    assert "HIGHEST" not in plain
