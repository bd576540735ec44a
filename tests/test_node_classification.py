"""Node classification (DeepWalk / PBG YouTube protocol): F1 definitions, top-k prediction, the
labels file, the JAX logistic regression against a Newton solution, and the whole protocol on
features that do / do not carry the labels."""

from __future__ import annotations

import gzip

import jax.numpy as jnp
import numpy as np
import pytest

from jgraph.cli.node_classification import evaluate, f1_scores, fit_one_vs_rest, predict_top_k, read_labels


def test_f1_micro_and_macro():
    y = np.array([[1, 0, 0], [0, 1, 0], [1, 1, 0]], bool)
    p = np.array([[1, 0, 0], [1, 0, 0], [1, 1, 0]], bool)
    # label 0: tp 2 fp 1 fn 0 -> 0.8; label 1: tp 1 fp 0 fn 1 -> 2/3; label 2: never true nor predicted -> 0
    r = f1_scores(y, p)
    assert r["micro_f1"] == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert r["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.0) / 3)


def test_top_k_gives_each_row_its_k_best():
    s = np.array([[0.1, 0.9, 0.5], [3.0, 2.0, 1.0]])
    assert predict_top_k(s, np.array([2, 1])).tolist() == [[False, True, True], [True, False, False]]


def test_read_labels(tmp_path):
    f = tmp_path / "groups.tsv.gz"
    with gzip.open(f, "wt") as fh:
        fh.write("0\tsports\n2\tmusic\n2\tsports\n9\tmusic\n")  # node 9 is not in the graph
    y, labels = read_labels(f, ["0", "1", "2"])
    assert labels == ["sports", "music"]
    assert y.tolist() == [[True, False], [False, False], [True, True]]


def _newton(x: np.ndarray, y: np.ndarray, c: float = 1.0) -> np.ndarray:
    """float64 Newton on 0.5|w|^2 / (c n) + mean log(1 + exp(-s (w.x + b))) for one label:
    x [n, d], y bool [n] -> (w, b) [d + 1]."""
    n, d = x.shape
    s = np.where(y, 1.0, -1.0)
    xb, th, reg = np.c_[x, np.ones(n)], np.zeros(d + 1), np.r_[np.ones(d), 0.0] / (c * n)
    for _ in range(25):
        p = 1 / (1 + np.exp(s * (xb @ th)))
        grad = -(xb * (s * p)[:, None]).mean(0) + reg * th
        hess = (xb * (p * (1 - p))[:, None]).T @ xb / n + np.diag(reg)
        th -= np.linalg.solve(hess, grad)
    return th


def test_logistic_regression_matches_newton():
    rng = np.random.default_rng(1)
    n, d = 300, 5  # the shapes of the protocol test below: one compilation serves both
    x = rng.normal(size=(n, d)).astype(np.float32)
    y = (x @ rng.normal(size=(d, d)) + rng.normal(size=(n, d))) > 0.5
    w, b, steps = fit_one_vs_rest(jnp.asarray(x), jnp.asarray(y), 1.0, 500, 1e-6)
    np.testing.assert_allclose(np.r_[np.asarray(w[:, 0]), float(b[0])], _newton(x, y[:, 0]), atol=1e-3)
    assert 0 < int(steps) < 500


def _protocol_in_numpy(x: np.ndarray, y: np.ndarray, repeats: int, seed: int = 0) -> list[dict]:
    """The protocol written out in float64 numpy (the same seeded splits): standardize on the
    training half, Newton one-vs-rest, each test node's k best labels, micro/macro-F1 by their
    definitions."""
    rng = np.random.default_rng(seed)
    n = len(x)
    runs = []
    for _ in range(repeats):
        perm = rng.permutation(n)
        tr, te = perm[: n // 2], perm[n // 2 :]
        mu, sd = x[tr].mean(0), x[tr].std(0) + 1e-8
        x_tr, x_te = (x[tr] - mu) / sd, (x[te] - mu) / sd
        th = np.stack([_newton(x_tr, y[tr, j]) for j in range(y.shape[1])], 1)  # [d + 1, L]
        scores = np.c_[x_te, np.ones(len(te))] @ th
        k = y[te].sum(1)
        pred = np.zeros_like(y[te])
        for i in range(len(te)):
            pred[i, np.argsort(-scores[i])[: k[i]]] = True
        tp, fp, fn = ((y[te] & pred).sum(0), (~y[te] & pred).sum(0), (y[te] & ~pred).sum(0))
        per = [2 * a / (2 * a + b + c) if 2 * a + b + c else 0.0 for a, b, c in zip(tp, fp, fn, strict=True)]
        runs.append({"micro_f1": 2 * tp.sum() / (2 * tp.sum() + fp.sum() + fn.sum()),
                     "macro_f1": float(np.mean(per))})
    return runs


def test_protocol_on_informative_and_random_features():
    """Micro- and macro-F1 (mean over 2 splits) equal the protocol written out in numpy, to a
    node or two of the 300 test nodes: about 0.9 on features that carry the labels, chance
    (about 1/5) on noise."""
    rng = np.random.default_rng(0)
    n, num_labels = 600, 5
    lab = rng.integers(num_labels, size=n)
    y = np.zeros((n, num_labels), bool)
    y[np.arange(n), lab] = True
    y[rng.integers(n, size=60), rng.integers(num_labels, size=60)] = True  # some nodes have 2 labels
    good = np.eye(num_labels)[lab] * 3 + rng.normal(size=(n, num_labels))
    noise = rng.normal(size=(n, num_labels))
    for x, low, high in ((good, 0.85, 1.0), (noise, 0.1, 0.35)):
        res = evaluate(x, y, fractions=(0.5,), repeats=2)
        assert res["nodes"] == n and res["labels"] == num_labels
        want = _protocol_in_numpy(x.astype(np.float32).astype(np.float64), y, repeats=2)
        for key in ("micro_f1", "macro_f1"):
            got = res["fractions"]["0.5"][key]
            assert got["mean"] == pytest.approx(np.mean([r[key] for r in want]), abs=0.007), key
            assert got["std"] == pytest.approx(np.std([r[key] for r in want]), abs=0.007), key
            assert low < got["mean"] < high, (key, got)
