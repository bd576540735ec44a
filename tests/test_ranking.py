"""Link-prediction evaluation: full ranking (raw and filtered) against brute force, metric sums,
and the sampled (PBG) protocol.

The dataset is tiny and hand-built: two entity types (4 users, 7 items; items sit after users in the
table, so candidate slicing and typed rows are exercised), two relations (user -buys-> item,
item -similar-> item). Items 5 and 6 have identical embeddings, so queries whose answer is one of
them have a tie, which the filtered protocol sometimes removes (the twin is another known answer).
Tie rules (jgraph/core/metrics.py): rank = 1 + #higher + share x #equal, share 1/2 (realistic),
1 (pessimistic, PBG) or 0 (optimistic). Model: translation + l2, so standard-mode tail queries pass
every candidate through the operator.
"""

from __future__ import annotations

from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pytest
from helpers import model_of, numpy_query_scores

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.config import EvalConfig
from jgraph.core.metrics import RankSums, auc_from_rank, chance_mrr, combine
from jgraph.core.model import Batch, Model
from jgraph.data.dataset import Dataset, Edges
from jgraph.ranking import full_ranking, sampled_ranking

D = 4
COUNTS = {"user": 4, "item": 7}
OFFSETS = np.array([0, 4])
REL_TYPES = np.array([[0, 1], [1, 1]], np.int32)  # buys: user -> item; similar: item -> item
HITS = [1, 3, 10]


def _edges(triples):
    t = np.array(triples, np.int64)
    return Edges(lhs=t[:, 0], rhs=t[:, 2], rel=t[:, 1].astype(np.int32))


def make_dataset() -> Dataset:
    ds = Dataset(
        name="tiny", entity_types=["user", "item"],
        entity_names={k: pa.array([f"{k}{i}" for i in range(n)]) for k, n in COUNTS.items()},
        relation_names=["buys", "similar"], relation_types=REL_TYPES,
    )
    # (lhs, rel, rhs)
    ds.splits["train"] = _edges([(0, 0, 2), (0, 0, 6), (1, 0, 5), (3, 1, 1), (2, 1, 4), (5, 1, 0)])
    ds.splits["valid"] = _edges([(2, 0, 3), (6, 1, 4)])
    ds.splits["test"] = _edges([(0, 0, 5), (1, 0, 6), (3, 0, 6), (6, 1, 2), (5, 1, 4), (2, 1, 1), (3, 0, 3)])
    return ds


def make_model(reciprocal: bool, max_norm: float | None = None) -> Model:
    return model_of(dimension=D, operator_of_relation=["translation"] * 2, relation_types=REL_TYPES,
                    num_types=2, comparator="l2", loss="softmax", reciprocal=reciprocal, max_norm=max_norm)


def make_params(model: Model, seed: int = 0):
    rng = np.random.default_rng(seed)
    emb = rng.standard_normal((OFFSETS[-1] + COUNTS["item"], D)).astype(np.float32)
    emb[OFFSETS[1] + 6] = emb[OFFSETS[1] + 5]  # items 5 and 6: identical rows -> tied scores
    params = jax.tree_util.tree_map(
        lambda p: jnp.asarray(p + rng.standard_normal(p.shape), jnp.float32), model.init_params())
    return params, emb


def brute_force(model: Model, params, emb, ds: Dataset, ties: str):
    """{protocol: {side: metrics}} by scoring every candidate of every test query one by one."""
    emb64 = emb.astype(np.float64)
    if model.max_norm is not None:  # rows are renormalised at lookup, as in training (PBG)
        norm = np.linalg.norm(emb64, axis=1, keepdims=True)
        emb64 = emb64 * np.minimum(1.0, model.max_norm / norm)
    p = {k: np.asarray(v["translation"]["translation"], np.float64) for k, v in params.items()}
    rows = lambda t: emb64[OFFSETS[t] : OFFSETS[t] + COUNTS[ds.entity_types[t]]]
    share = {"realistic": 0.5, "pessimistic": 1.0, "optimistic": 0.0}[ties]
    known = {0: {}, 1: {}}
    for e in ds.splits.values():
        for h, r, t in zip(e.lhs, e.rel, e.rhs, strict=True):
            known[0].setdefault((t, r), set()).add(h)
            known[1].setdefault((h, r), set()).add(t)
    out = {"raw": {}, "filtered": {}}
    test = ds.splits["test"]
    for side in (0, 1):
        ranks = {"raw": [], "filtered": []}
        aucs = {"raw": [], "filtered": []}
        own_above = {"raw": [], "filtered": []}  # the query's own entity scores above the answer
        for h, r, t in zip(test.lhs, test.rel, test.rhs, strict=True):
            tl, tr = REL_TYPES[r]
            x, y = emb64[OFFSETS[tl] + h], emb64[OFFSETS[tr] + t]
            if side == 0:  # (?, r, t): candidates x'
                cands = rows(tl)
                f = y + p["rhs"][r]  # standard g_r(y); reciprocal h_r(y) (params["rhs"])
                scores = -np.linalg.norm(cands - f, axis=1)
                target, fixed = h, t
            else:  # (h, r, ?): candidates y'
                cands = rows(tr)
                if not model.reciprocal:
                    scores = -np.linalg.norm(x - (cands + p["rhs"][r]), axis=1)  # c(x, g_r(y'))
                else:
                    scores = -np.linalg.norm(cands - (x + p["lhs"][r]), axis=1)  # c(y', g_r(x))
                target, fixed = t, h
            others = np.arange(len(cands)) != target
            removed = np.isin(np.arange(len(cands)), list(known[side][(fixed, r)])) & others
            for proto, keep in (("raw", others), ("filtered", others & ~removed)):
                greater = np.sum((scores > scores[target]) & keep)
                equal = np.sum((scores == scores[target]) & keep)
                rank = 1 + greater + share * equal
                ranks[proto].append(rank)
                aucs[proto].append(1 - (rank - 1) / max(keep.sum(), 1))
                own_ok = tl == tr and fixed != target and (proto == "raw" or not removed[fixed])
                own_above[proto].append(own_ok and scores[fixed] > scores[target])
        for proto in out:
            rk = np.array(ranks[proto])
            m = {"mrr": np.mean(1 / rk), "mr": np.mean(rk), "auc": np.mean(aucs[proto]), "count": rk.size,
                 "self_outranks_share": np.mean(own_above[proto])}
            m.update({f"hits@{k}": np.mean(rk <= k) for k in HITS})
            out[proto]["lhs" if side == 0 else "rhs"] = m
    return out


def _check(got: dict, want: dict):
    assert set(got) == set(want)
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=1e-6, atol=1e-9, err_msg=key)


@pytest.mark.parametrize(
    "reciprocal, ties, max_norm",
    [(False, "realistic", None), (False, "pessimistic", None), (False, "optimistic", None),
     (True, "realistic", 1.5)],
    ids=["standard-realistic", "standard-pessimistic", "standard-optimistic", "reciprocal-realistic-maxnorm"],
)
def test_full_ranking_matches_brute_force(reciprocal, ties, max_norm):
    """Raw and filtered MRR/MR/Hits@k/AUC per side and averaged, in small query batches (the tie
    rules are one code path for both modes, so reciprocal mode runs with the default rule only;
    it also sets max_norm, under which rows are scored renormalised, as in training)."""
    ds = make_dataset()
    model = make_model(reciprocal, max_norm)
    params, emb = make_params(model)
    ecfg = EvalConfig(batch_size=3, hits=HITS, ties=ties)
    got = full_ranking(model, params, jnp.asarray(emb), OFFSETS, ds, "test", ecfg, ["raw", "filtered"])
    want = brute_force(model, params, emb, ds, ties)
    for proto in ("raw", "filtered"):
        for side in ("lhs", "rhs"):
            _check(got[proto][side], want[proto][side])
        # both sides have one query per test edge: the average is the plain mean of the sides
        avg = {k: (want[proto]["lhs"][k] + want[proto]["rhs"][k]) / 2 for k in want[proto]["lhs"]}
        avg["count"] = 2 * len(ds.splits["test"])
        _check(got[proto]["avg"], avg)


def test_ties_rules_differ_on_this_data():
    """The fixture really has ties, in both protocols (else the tie tests above prove nothing):
    pessimistic MR > realistic MR > optimistic MR, by half a tie each."""
    ds = make_dataset()
    model = make_model(False)
    params, emb = make_params(model)
    mr = {t: brute_force(model, params, emb, ds, t) for t in ("realistic", "pessimistic", "optimistic")}
    for proto in ("raw", "filtered"):
        p, r, o = (mr[t][proto]["lhs"]["mr"] + mr[t][proto]["rhs"]["mr"] for t in ("pessimistic", "realistic",
                                                                                  "optimistic"))
        assert p > r > o
        np.testing.assert_allclose(p - r, r - o)
    # filtering removes the twin for some queries: fewer ties than raw
    sides = ("lhs", "rhs")
    gap = {proto: sum(mr["pessimistic"][proto][s]["mr"] - mr["optimistic"][proto][s]["mr"] for s in sides)
           for proto in ("raw", "filtered")}
    assert gap["raw"] > gap["filtered"] > 0


def test_full_ranking_all_candidates_tied():
    """Every entity the same point and zero translations: all candidates tie, and the pessimistic
    rule (PBG's) ranks each answer last: heads of `buys` are users (4 candidates), every other
    query ranks among the 7 items; test relations are buys x4, similar x3, so
    lhs MR = (4 x 4 + 3 x 7) / 7 = 37/7, rhs MR = 7, and every AUC is 0."""
    ds = make_dataset()
    model = make_model(False)
    emb = jnp.ones((OFFSETS[-1] + COUNTS["item"], D), jnp.float32)
    ecfg = EvalConfig(batch_size=8, hits=HITS, ties="pessimistic")
    got = full_ranking(model, model.init_params(), emb, OFFSETS, ds, "test", ecfg, ["raw"])["raw"]
    assert got["lhs"]["mr"] == pytest.approx(37 / 7)
    assert got["rhs"]["mr"] == pytest.approx(7.0)
    assert got["avg"]["auc"] == 0.0 and got["avg"]["hits@3"] == 0.0


# ------------------------------------------------------------------------------ metric sums
def test_rank_sums():
    """ranks 1, 2, 4, 10.5 (a realistic half-tie) fed in two calls:
    MRR = (1 + 1/2 + 1/4 + 1/10.5) / 4, MR = 17.5 / 4, Hits@1 = 1/4, @3 = 2/4, @10 = 3/4."""
    s = RankSums(hits=(1, 3, 10))
    s.add(np.array([1.0, 2.0]), np.array([1.0, 0.9]))
    s.add(np.array([4.0, 10.5]), np.array([0.5, 0.0]))
    got = s.result()
    assert got["count"] == 4
    np.testing.assert_allclose(got["mrr"], (1 + 0.5 + 0.25 + 1 / 10.5) / 4)
    np.testing.assert_allclose(got["mr"], 17.5 / 4)
    np.testing.assert_allclose([got["hits@1"], got["hits@3"], got["hits@10"]], [0.25, 0.5, 0.75])
    np.testing.assert_allclose(got["auc"], 2.4 / 4)
    empty = RankSums(hits=(1,)).result()
    assert empty["count"] == 0 and empty["mrr"] == 0.0


def test_combine_weights_sides_by_count():
    """avg = count-weighted mean: lhs 2 queries MRR 1, rhs 6 queries MRR .5 -> (2 + 3) / 8 = .625;
    a side without queries is ignored."""
    got = combine({"lhs": {"mrr": 1.0, "mr": 1.0, "count": 2}, "rhs": {"mrr": 0.5, "mr": 3.0, "count": 6}})
    assert got == {"mrr": 0.625, "mr": 2.5, "count": 8}
    one_side = combine({"lhs": {"mrr": 0.3, "count": 0}, "rhs": {"mrr": 0.5, "count": 1}})
    assert one_side == {"mrr": 0.5, "count": 1}
    assert combine({}) == {}


def test_auc_from_rank_and_chance_mrr():
    """AUC = 1 - (rank - 1) / (candidates - 1): first of 5 -> 1, last -> 0, middle -> .5;
    chance MRR of n candidates = H_n / n: n = 4 -> (1 + 1/2 + 1/3 + 1/4) / 4 = 25/48."""
    np.testing.assert_allclose(auc_from_rank(np.array([1.0, 5.0, 3.0]), np.array([5, 5, 5])), [1.0, 0.0, 0.5])
    np.testing.assert_allclose(auc_from_rank(np.array([1.0]), np.array([1])), [1.0])
    np.testing.assert_allclose(chance_mrr(4), 25 / 48)
    assert chance_mrr(1) == 1.0


# ------------------------------------------------------------------------------ sampled protocol
def _sampled_dataset(n: int = 6) -> Dataset:
    """8 test edges of one relation (one chunk group) over n entities of one type."""
    ds = Dataset(name="s", entity_types=["e"], entity_names={"e": pa.array([f"e{i}" for i in range(n)])},
                 relation_names=["r"], relation_types=np.zeros((1, 2), np.int32))
    rng = np.random.default_rng(5)
    ds.splits["test"] = Edges(rng.integers(0, n, 8), rng.integers(0, n, 8), np.zeros(8, np.int32))
    return ds


def _sampled(emb, ties):
    ds = _sampled_dataset()
    model = model_of(dimension=D, operator_of_relation=["diagonal"], loss="softmax")
    ecfg = EvalConfig(hits=HITS, ties=ties, num_batch_negs=4, num_uniform_negs=3)
    return sampled_ranking(model, model.init_params(), jnp.asarray(emb), np.array([0]), ds, "test", ecfg,
                           np.zeros(1, np.int64))


def test_sampled_ranking_all_tied():
    """Every entity the same point: each positive ties with its 3 batch (4 per chunk, minus itself)
    + 3 uniform negatives, so the pessimistic rank (PBG's rule) is 1 + 6 = 7 exactly, and AUC = 1/2."""
    mr = 7.0
    res = _sampled(np.ones((6, D), np.float32), "pessimistic")
    for side in ("lhs", "rhs", "avg"):
        assert res[side]["mr"] == pytest.approx(mr)
        assert res[side]["mrr"] == pytest.approx(1 / mr)
        assert res[side]["auc"] == pytest.approx(0.5)
    assert res["lhs"]["count"] == res["rhs"]["count"] == 8


def _sampled_brute_force(model: Model, params, emb: np.ndarray, ds: Dataset, ecfg: EvalConfig,
                         offsets: np.ndarray, group_of_rel):
    """Per side: each test query's rank interval [lo, hi] and AUC interval, scored in float64 numpy
    (helpers.numpy_query_scores) against the very candidates the protocol gathers: the chunks of
    its plan, each chunk's batch negatives (the chunk's other edges) and uniform ones (the ids
    make_sampled_ids draws with the chunk's key). A candidate within 1e-4 of the answer's score
    (the answer itself, drawn or in the batch) may rank either way. Also checks that each
    chunk keeps one group and that every candidate is an entity of its side's type."""
    from jgraph.core.ranks import make_sampled_ids
    from jgraph.ranking import _sampled_plan

    man = {"relations": [{"operator": o} for o in model.spec.operator_of_relation],
           "comparator": model.spec.comparator, "reciprocal": model.reciprocal}
    p64 = jax.tree_util.tree_map(lambda a: np.asarray(a, np.float64), params)
    e64 = emb.astype(np.float64)
    rt = ds.relation_types
    counts = np.array([ds.num_entities(t) for t in ds.entity_types])
    neg, layout, batches = _sampled_plan(model, ds, ds.splits["test"], ecfg, offsets, group_of_rel)
    ids_fn, key = make_sampled_ids(model, neg), jax.random.key(ecfg.seed)
    out = {side: {"lo": [], "hi": [], "auc_lo": [], "auc_hi": []} for side in (0, 1)}
    seen = 0
    for i in range(batches.num_batches):
        (lhs, rhs, rel, _), _ = batches.block(i, 1)
        lhs, rhs, rel = lhs[0, 0], rhs[0, 0], rel[0, 0]  # one chunk of P edges
        ids = [np.asarray(x)[0] for x in ids_fn(Batch(*(jnp.asarray(a[0]) for a in batches.block(i, 1)[0])),
                                                 layout, jax.random.fold_in(key, i))]
        valid = lhs >= 0
        p = len(lhs)
        if group_of_rel is not None:
            assert len(set(group_of_rel[rel[valid]].tolist())) == 1, "a chunk mixes groups"
        for j in np.flatnonzero(valid):
            seen += 1
            r = int(rel[j])
            for side in (0, 1):
                fixed, true = (rhs[j], lhs[j]) if side == 0 else (lhs[j], rhs[j])
                t = rt[r, side]
                cands = [ids[side][k] for k in range(p) if valid[k] and k != j] + list(ids[side][p:])
                cands = np.array(cands, np.int64)
                assert np.all((cands >= offsets[t]) & (cands < offsets[t] + counts[t])), (side, r, cands)
                scores = numpy_query_scores(man, e64, p64, side, np.array([fixed]), r)[0]
                above = int(np.sum(scores[cands] > scores[true] + 1e-4))
                tied = int(np.sum(np.abs(scores[cands] - scores[true]) <= 1e-4))
                o = out[side]
                o["lo"].append(1 + above)
                o["hi"].append(1 + above + tied)
                o["auc_lo"].append((len(cands) - above - tied) / len(cands))
                o["auc_hi"].append((len(cands) - above) / len(cands))
    assert seen == len(ds.splits["test"])  # every test edge in exactly one chunk slot
    return {side: {k: np.array(v, np.float64) for k, v in o.items()} for side, o in out.items()}


def _check_sampled(got: dict, want: dict) -> None:
    """The protocol's metrics lie within what the brute-force rank intervals allow (equal where no
    candidate is within rounding of an answer)."""
    for side, name in ((0, "lhs"), (1, "rhs")):
        w, g = want[side], got[name]
        assert g["count"] == len(w["lo"])
        assert np.mean(1 / w["hi"]) - 1e-6 <= g["mrr"] <= np.mean(1 / w["lo"]) + 1e-6, (name, g, w)
        assert np.mean(w["lo"]) - 1e-6 <= g["mr"] <= np.mean(w["hi"]) + 1e-6, (name, g["mr"])
        assert np.mean(w["auc_lo"]) - 1e-6 <= g["auc"] <= np.mean(w["auc_hi"]) + 1e-6, (name, g["auc"])
        for k in HITS:
            assert np.mean(w["hi"] <= k) - 1e-6 <= g[f"hits@{k}"] <= np.mean(w["lo"] <= k) + 1e-6
        assert np.mean(w["lo"] == w["hi"]) >= 0.5  # the intervals bind: most ranks are exact


def test_sampled_ranking_matches_brute_force():
    """Random embeddings, one type of 40 entities: ranks among 3 batch (4 per chunk, minus itself)
    + 3 uniform negatives: MRR, MR, Hits@k and AUC within the brute-force intervals (realistic
    ties; a candidate that is the answer itself may round either way), and under the realistic
    rule each query's AUC is 1 - (rank - 1) / 6, so mean AUC = 1 - (MR - 1) / 6."""
    ds = _sampled_dataset(40)
    model = model_of(dimension=D, operator_of_relation=["diagonal"], loss="softmax")
    emb = np.random.default_rng(1).standard_normal((40, D)).astype(np.float32)
    ecfg = EvalConfig(hits=HITS, ties="realistic", num_batch_negs=4, num_uniform_negs=3)
    res = sampled_ranking(model, model.init_params(), jnp.asarray(emb), np.array([0]), ds, "test", ecfg,
                          np.zeros(1, np.int64))
    want = _sampled_brute_force(model, model.init_params(), emb, ds, ecfg, np.array([0]),
                                np.zeros(1, np.int64))
    _check_sampled(res, want)
    for side in ("lhs", "rhs"):
        m = res[side]
        assert m["count"] == 8 and 1 < m["mr"] < 7  # neither all first nor all last
        np.testing.assert_allclose(m["auc"], 1 - (m["mr"] - 1) / 6, rtol=1e-6)


REL_TYPES3 = np.array([[0, 1], [1, 1], [1, 0]], np.int32)  # buys: user -> item, similar, bought_by


@pytest.mark.parametrize("reciprocal", [False, True], ids=["standard", "reciprocal"])
def test_sampled_ranking_several_types_and_relations_against_brute_force(reciprocal):
    """Users and items, three relations (user -> item, item -> item, item -> user), 24 test edges
    in chunks of 3 (relation by relation in standard mode, by type pair with reciprocal
    relations) + 4 uniform negatives of the replaced side's type: every rank, MRR, MR, Hits@k and
    AUC per side equals brute force over the same candidates, and no candidate is of the wrong type."""
    from jgraph.assembly import relation_groups

    counts = {"user": 30, "item": 50}  # enough that a drawn candidate is seldom the answer itself
    offsets = np.array([0, 30])
    ds = Dataset(name="typed", entity_types=["user", "item"],
                 entity_names={k: pa.array([f"{k}{i}" for i in range(n)]) for k, n in counts.items()},
                 relation_names=["buys", "similar", "bought_by"], relation_types=REL_TYPES3)
    rng = np.random.default_rng(7)
    rel = np.repeat(np.arange(3, dtype=np.int32), 8)
    n_of = np.array(list(counts.values()))
    ds.splits["test"] = Edges(rng.integers(0, n_of[REL_TYPES3[rel, 0]]),
                              rng.integers(0, n_of[REL_TYPES3[rel, 1]]), rel)
    model = model_of(dimension=D, operator_of_relation=["translation"] * 3, relation_types=REL_TYPES3,
                     num_types=2, comparator="l2", loss="softmax", reciprocal=reciprocal)
    emb = rng.standard_normal((80, D)).astype(np.float32)
    params = jax.tree_util.tree_map(
        lambda p: jnp.asarray(p + rng.standard_normal(p.shape), jnp.float32), model.init_params())
    group = relation_groups(SimpleNamespace(model=SimpleNamespace(reciprocal=reciprocal)), ds)
    ecfg = EvalConfig(hits=HITS, ties="realistic", num_batch_negs=3, num_uniform_negs=4, seed=3)
    res = sampled_ranking(model, params, jnp.asarray(emb), offsets, ds, "test", ecfg, group)
    want = _sampled_brute_force(model, params, emb, ds, ecfg, offsets, group)
    _check_sampled(res, want)
    for side in (0, 1):  # the ranks spread: the check above is not met by a constant
        assert np.ptp(want[side]["lo"]) >= 3


def test_exclude_self_removes_the_query_entity():
    """item -similar-> item queries: with eval.exclude_self the query's own item is no candidate.
    With dot scores and the operator at identity, an item is its own best match, so every query
    whose answer is another item loses exactly one competitor."""
    ds = make_dataset()
    ds.splits = {"test": _edges([(6, 1, 2), (2, 1, 1), (5, 1, 4)])}
    model = model_of(dimension=D, operator_of_relation=["none"] * 2, relation_types=REL_TYPES, num_types=2,
                     loss="softmax")
    rng = np.random.default_rng(1)
    emb = rng.standard_normal((OFFSETS[-1] + COUNTS["item"], D)).astype(np.float32)
    emb[OFFSETS[1]:] *= np.arange(1, 8)[:, None]  # distinct norms: no ties
    params = model.init_params()
    plain = full_ranking(model, params, jnp.asarray(emb), OFFSETS, ds, "test",
                         EvalConfig(hits=HITS), ["raw"])
    excl = full_ranking(model, params, jnp.asarray(emb), OFFSETS, ds, "test",
                        EvalConfig(hits=HITS, exclude_self=True), ["raw"])
    items = emb[OFFSETS[1]:].astype(np.float64)
    for side, (fix, ans) in (("rhs", (0, 2)), ("lhs", (2, 0))):
        t = np.array([(6, 2), (2, 1), (5, 4)])
        want_plain, want_excl = [], []
        for q in t:
            scores = items @ items[q[fix // 2]]
            target, own = q[ans // 2], q[fix // 2]
            higher = scores > scores[target]
            want_plain.append(1 + higher.sum())
            want_excl.append(1 + higher.sum() - higher[own])
        assert plain["raw"][side]["mr"] == pytest.approx(np.mean(want_plain))
        assert excl["raw"][side]["mr"] == pytest.approx(np.mean(want_excl))
        assert excl["raw"][side]["mr"] < plain["raw"][side]["mr"]


@pytest.mark.parametrize("use_batch", [True, False])
def test_sampled_exclude_self_against_brute_force(use_batch):
    """PBG's sampled protocol with eval.exclude_self: a negative that is the query's own entity
    (the edge's other end) is not counted. Ranks checked against a loop over the very candidates
    the step gathers (same seed), on 6 entities so that draws often hit the query's own entity."""
    from jgraph.core.hashrng import batch_seed
    from jgraph.core.model import Batch
    from jgraph.core.ranks import make_sampled_ranks
    from jgraph.core.step import NegativeSpec, gather_ids, side_blocks
    from jgraph.plan.partition import Layout

    n, c, p, u = 6, 3, 4, 5
    model = model_of(dimension=D, loss="softmax")
    neg = NegativeSpec(num_uniform=u, use_batch=use_batch, all_negs=False, sides=(True, True))
    rng = np.random.default_rng(3)
    emb = rng.standard_normal((n, D)).astype(np.float32)  # distinct scores: no ties
    lhs = rng.integers(0, n, (c, p))
    rhs = (lhs + rng.integers(1, n, (c, p))) % n  # no self-loops: the query's own entity is
    #                                               never the true one
    lhs[2, 3] = rhs[2, 3] = -1  # one padding edge
    batch = Batch(jnp.asarray(lhs, jnp.int32), jnp.asarray(rhs, jnp.int32),
                  jnp.zeros((c, p), jnp.int32), jnp.ones((c, p), jnp.float32))
    layout = Layout(jnp.zeros((1, 2), jnp.int32), jnp.full((1, 2), n, jnp.int32))
    key = jax.random.key(0)
    ids = [np.asarray(b) for b in side_blocks(neg, gather_ids(model, neg, batch, layout,
                                                                batch_seed(key, 0)))]
    excluded = 0
    for exclude in (False, True):
        out = make_sampled_ranks(model, neg, "pessimistic", n, exclude)(
            model.init_params(), jnp.asarray(emb), batch, layout, key)
        for side in (0, 1):
            rank = np.asarray(out[side][0])
            own_side = (rhs, lhs)[side]  # the end that stays: the query's own entity
            for ci in range(c):
                for pi in range(p):
                    if lhs[ci, pi] < 0:
                        continue
                    fixed, true = emb[own_side[ci, pi]], emb[(lhs, rhs)[side][ci, pi]]
                    cands = [(j, ids[side][ci, j]) for j in range(p + u)
                             if (j >= p or (use_batch and j != pi and lhs[ci, j] >= 0))]
                    if exclude:
                        cands = [(j, e) for j, e in cands if e != own_side[ci, pi]]
                    # a candidate that is the true entity ties with it, up to rounding (the
                    # step scores positives and negatives in different ops): either way counts
                    t = true @ fixed
                    above = sum(emb[e] @ fixed > t + 1e-4 for _, e in cands)
                    tied = sum(abs(emb[e] @ fixed - t) <= 1e-4 for _, e in cands)
                    assert 1 + above <= rank[ci, pi] <= 1 + above + tied, (exclude, side, ci, pi)
                    excluded += exclude and any(e == own_side[ci, pi] for _, e in
                                                [(j, ids[side][ci, j]) for j in range(p, p + u)])
    assert excluded > 0  # the draws did hit queries' own entities
