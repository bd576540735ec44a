"""What full ranking reports beside MRR, each against an independent brute-force numpy ranking:
the symmetric filter (data.symmetric: valid/test edges filtered in both directions), the degree
baseline (candidates ranked by training degree, the query's own entity never a candidate), the
share of queries whose own entity outranks the answer, and the per-relation metrics.

Graph: one entity type of 9 nodes, two relations; model: no operator, dot comparator, so a node
scores |x|^2 against itself and its own entity often outranks the answer. Ties are plentiful in
the degree baseline (degrees are small integers), so every tie rule is exercised.
"""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pytest

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.config import EvalConfig, TrainConfig
from jgraph.core.metrics import degree_ranks
from jgraph.core.model import Model, ModelSpec
from jgraph.data.dataset import Dataset, Edges, load_dataset
from jgraph.ranking import full_ranking

N, D = 9, 3
SHARE = {"realistic": 0.5, "pessimistic": 1.0, "optimistic": 0.0}
TRAIN = [(0, 0, 1), (1, 0, 2), (2, 0, 0), (3, 0, 4), (0, 0, 4), (5, 1, 5), (5, 1, 6), (6, 1, 7), (0, 1, 8),
         (8, 1, 3), (1, 0, 3)]
VALID = [(4, 0, 2), (7, 1, 5)]
TEST = [(2, 0, 1), (4, 0, 6), (5, 1, 3), (3, 1, 5), (6, 0, 8), (8, 1, 0), (7, 0, 7), (1, 1, 5)]


def _edges(triples) -> Edges:
    t = np.array(triples, np.int64)
    return Edges(lhs=t[:, 0], rhs=t[:, 2], rel=t[:, 1].astype(np.int32))


def make_dataset(symmetric: bool) -> Dataset:
    names = {"node": pa.array([f"n{i}" for i in range(N)])}
    ds = Dataset(name="g", entity_types=["node"], entity_names=names,
                 relation_names=["a", "b"], relation_types=np.zeros((2, 2), np.int32))
    train = TRAIN + ([(t, r, h) for h, r, t in TRAIN] if symmetric else [])  # as data.symmetric trains
    ds.splits = {"train": _edges(train), "valid": _edges(VALID), "test": _edges(TEST)}
    ds.symmetric = symmetric
    return ds


def make_model() -> Model:
    return Model(ModelSpec(dimension=D, operator_of_relation=["none"] * 2,
                           relation_types=np.zeros((2, 2), np.int32), loss="softmax"))


def make_emb(seed: int = 0) -> np.ndarray:
    emb = np.random.default_rng(seed).standard_normal((N, D)).astype(np.float32)
    return emb * np.linspace(0.5, 2.0, N, dtype=np.float32)[:, None]  # varied norms


def brute_force(ds: Dataset, emb: np.ndarray, ties: str, exclude_self: bool, symmetric_filter: bool):
    """Per query (side, test edge), in test order, side 0 then 1: dict of lists rank (filtered),
    own_above (the query's own node scores above the answer and is no known answer), degree rank,
    relation; the filter: every split's edges, reversed too when `symmetric_filter`."""
    known: set[tuple[int, int, int]] = set()
    for e in ds.splits.values():
        for h, r, t in zip(e.lhs, e.rel, e.rhs, strict=True):
            known.add((int(h), int(r), int(t)))
            if symmetric_filter:
                known.add((int(t), int(r), int(h)))
    tr = ds.splits["train"]
    degree = np.bincount(tr.lhs, minlength=N) + np.bincount(tr.rhs, minlength=N)
    x = emb.astype(np.float64)
    out = {"rank": [], "own_above": [], "degree": [], "rel": []}
    for side in (0, 1):
        test = ds.splits["test"]
        for h, r, t in zip(test.lhs, test.rel, test.rhs, strict=True):
            fixed, target = (t, h) if side == 0 else (h, t)
            scores = x @ x[fixed]  # no operator, dot: the same on both sides
            is_known = np.array([((c, r, fixed) if side == 0 else (fixed, r, c)) in known for c in range(N)])
            cand = np.ones(N, bool)
            cand[target] = False
            cand &= ~is_known
            deg_cand = cand.copy()
            deg_cand[fixed] = False  # the degree baseline never ranks the query's own node
            if exclude_self:
                cand[fixed] = False
            for key, s, keep in (("rank", scores, cand), ("degree", degree, deg_cand)):
                greater, equal = np.sum((s > s[target]) & keep), np.sum((s == s[target]) & keep)
                out[key].append(1 + greater + SHARE[ties] * equal)
            above = scores[fixed] > scores[target]
            out["own_above"].append(fixed != target and not is_known[fixed] and above)
            out["rel"].append(int(r))
    return {k: np.array(v) for k, v in out.items()}


def _run(ds, emb, ties="realistic", exclude_self=False):
    ecfg = EvalConfig(batch_size=3, hits=[1, 3, 10], ties=ties, exclude_self=exclude_self)
    return full_ranking(make_model(), make_model().init_params(), jnp.asarray(emb), np.array([0]), ds, "test",
                        ecfg, ["filtered", "raw"])


def test_symmetric_filter_removes_reversed_valid_and_test_edges():
    """data.symmetric: a test answer t of (h, r, ?) is filtered when (t, r, h') is any split's edge,
    reversed; the filtered MRR equals the brute force with the complete (two-way) filter and
    differs from the one-way filter (so the test can fail)."""
    ds = make_dataset(symmetric=True)
    emb = make_emb()
    got = _run(ds, emb)["filtered"]
    want = brute_force(ds, emb, "realistic", False, symmetric_filter=True)
    one_way = brute_force(ds, emb, "realistic", False, symmetric_filter=False)
    n = len(TEST)
    for i, side in enumerate(("lhs", "rhs")):
        np.testing.assert_allclose(got[side]["mrr"], np.mean(1 / want["rank"][i * n:(i + 1) * n]), rtol=1e-6)
    assert np.mean(1 / want["rank"]) != pytest.approx(np.mean(1 / one_way["rank"]))
    ds.symmetric = False  # the same edges, read as directed: the one-way filter
    got_one_way = _run(ds, emb)["filtered"]["avg"]["mrr"]
    np.testing.assert_allclose(got_one_way, np.mean(1 / one_way["rank"]), rtol=1e-6)


def test_load_dataset_marks_symmetric(tmp_path):
    """A TSV graph loaded with data.symmetric=true is marked symmetric (and trains both ways)."""
    (tmp_path / "g").mkdir()
    for split, rows in (("train", "a\tb\nb\tc\n"), ("valid", "c\ta\n"), ("test", "a\tc\n")):
        (tmp_path / "g" / f"{split}.tsv").write_text(rows)
    cfg = TrainConfig()
    d = cfg.data
    d.name, d.format, d.root, d.path, d.symmetric = "g", "tsv", str(tmp_path), "g", True
    d.train, d.valid, d.test = "train.tsv", "valid.tsv", "test.tsv"
    ds = load_dataset(cfg)
    assert ds.symmetric and len(ds.splits["train"]) == 4
    d.symmetric = False
    assert not load_dataset(cfg).symmetric


@pytest.mark.parametrize("ties", ["realistic", "pessimistic", "optimistic"])
@pytest.mark.parametrize("symmetric", [False, True])
def test_degree_baseline_against_numpy(ties, symmetric):
    """The degree baseline's MRR and Hits@k per side: candidates scored by their training degree,
    other known answers filtered, the query's own node excluded, ties by the rule."""
    ds = make_dataset(symmetric)
    res = _run(ds, make_emb(), ties)
    want = brute_force(ds, make_emb(), ties, False, symmetric)["degree"]
    n = len(TEST)
    for i, side in enumerate(("lhs", "rhs")):
        rk = want[i * n:(i + 1) * n]
        got = res["degree_baseline"][side]
        np.testing.assert_allclose(got["mrr"], np.mean(1 / rk), rtol=1e-9)
        np.testing.assert_allclose(got["mr"], np.mean(rk), rtol=1e-9)
        np.testing.assert_allclose(got["hits@3"], np.mean(rk <= 3), rtol=1e-9)
    np.testing.assert_allclose(res["degree_baseline"]["avg"]["mrr"], np.mean(1 / want), rtol=1e-9)


def test_degree_ranks_ties_and_filter():
    """Hand-worked: degrees [3, 1, 3, 2, 3]; answer 2 (degree 3), own entity 0 (excluded), node 4
    a known answer (filtered): left are 1 (deg 1) and 3 (deg 2), none above: rank 1 under every
    rule. Answer 1 (deg 1) with own 3: 0, 2, 4 above (3 excluded): rank 4; no filter pairs."""
    deg = np.array([3, 1, 3, 2, 3])
    rank, num = degree_ranks(deg, np.array([2, 1]), np.array([0, 3]), np.array([0, 0]), np.array([4, 2]),
                             "pessimistic")
    # query 0's pair (0, 2) is its answer (never filtered); (0, 4) removes node 4
    np.testing.assert_array_equal(rank, [1.0, 4.0])
    np.testing.assert_array_equal(num, [3, 4])
    # answer 0 (deg 3), nothing excluded or filtered: ties with 2 and 4
    for ties, want in (("realistic", 2.0), ("pessimistic", 3.0), ("optimistic", 1.0)):
        r, n = degree_ranks(deg, np.array([0]), np.array([5]), np.zeros(0, int), np.zeros(0, int), ties)
        assert r[0] == want and n[0] == 5


@pytest.mark.parametrize("exclude_self", [False, True])
def test_self_outranks_share_and_per_relation(exclude_self):
    """self_outranks_share per side and per relation, and per-relation MRR / Hits@1 / Hits@10,
    against the numpy ranking; (7, 0, 7) is a true edge, so in its query the own node is the
    answer, and (2, a, 0) / (0, a, 2) make the own node a known answer of other queries: only the
    filtered share leaves those out. exclude_self changes the ranks, not the share."""
    ds = make_dataset(symmetric=False)
    emb = make_emb(3)
    res = _run(ds, emb, exclude_self=exclude_self)
    want = brute_force(ds, emb, "realistic", exclude_self, False)
    n = len(TEST)
    got = res["filtered"]
    for i, side in enumerate(("lhs", "rhs")):
        part = slice(i * n, (i + 1) * n)
        np.testing.assert_allclose(got[side]["self_outranks_share"], np.mean(want["own_above"][part]))
        np.testing.assert_allclose(got[side]["mrr"], np.mean(1 / want["rank"][part]), rtol=1e-6)
    assert 0 < got["avg"]["self_outranks_share"] < 1  # the fixture has both kinds of queries
    for r, name in enumerate(ds.relation_names):
        m = want["rel"] == r
        rk = want["rank"][m]
        pr = got["per_relation"][name]
        assert pr["count"] == m.sum()
        np.testing.assert_allclose([pr["mrr"], pr["hits@1"], pr["hits@10"], pr["self_outranks_share"]],
                                   [np.mean(1 / rk), np.mean(rk <= 1), np.mean(rk <= 10),
                                    np.mean(want["own_above"][m])], rtol=1e-6)


def test_training_and_evaluate_cli_report_the_degree_baseline(tmp_path, capsys):
    """metrics.json's degree_baseline_mrr per split is the eval's degree_baseline average; the
    `evaluate` command writes the same figure (it does not depend on the model) and prints the
    model's MRR as a multiple of it; per-relation metrics cover every query."""
    from helpers import cfg_of

    from jgraph.cli.evaluate import main
    from jgraph.train.run import run

    m = run(cfg_of(["training.num_epochs=1", "eval.splits=[valid]", "eval.protocols=[filtered]"]),
            str(tmp_path))
    base = m["eval"]["valid"]["degree_baseline"]["avg"]["mrr"]
    assert m["degree_baseline_mrr"] == {"valid": base} and 0 < base < 1
    per_rel = m["eval"]["valid"]["filtered"]["per_relation"]
    assert sum(r["count"] for r in per_rel.values()) == m["eval"]["valid"]["filtered"]["avg"]["count"]
    assert main([str(tmp_path), "--split", "valid", "--protocol", "filtered"]) == 0
    out = json.loads((tmp_path / "eval_valid.json").read_text())
    assert out["degree_baseline_mrr"]["valid"] == pytest.approx(base, rel=1e-12)
    assert out["chance_mrr"] == pytest.approx(m["chance_mrr"])
    printed = capsys.readouterr().out
    assert "x the degree baseline" in printed and "valid degree_baseline avg" in printed
