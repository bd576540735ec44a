"""Random-walk edges (jgraph/data/walks.py): pair counts and window semantics on graphs whose walks
are fixed (counted by hand), node2vec's p/q bias against its closed form (chi-square), and the pairs
placed in a partitioned run's buckets, in memory and through storage.edge_dir, then trained."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from helpers import config_of

from jgraph.config import WalksConfig
from jgraph.data.graph import Dataset, Edges
from jgraph.data.walks import WalkGraph, pairs_per_walk, random_walks, walk_edges, walk_pairs
from jgraph.plan.partition import PartitionLayout, TypePartitions

PATH = ([0, 1, 2, 3], [1, 2, 3, 4])  # directed path 0 -> 1 -> 2 -> 3 -> 4: every walk is fixed


def pairs(graph: WalkGraph, **kw) -> Counter:
    out: Counter = Counter()
    for lhs, rhs in walk_pairs(graph, WalksConfig(**kw)):
        out.update(zip(lhs.tolist(), rhs.tolist(), strict=True))
    return out


def test_pairs_per_walk_by_hand():
    assert pairs_per_walk(4, 2) == 3 + 2
    assert pairs_per_walk(40, 5) == 39 + 38 + 37 + 36 + 35
    assert pairs_per_walk(4, 10) == 3 + 2 + 1  # the window is cut at the walk's end


def test_window_pairs_on_a_path_counted_by_hand():
    g = WalkGraph(np.array(PATH[0]), np.array(PATH[1]), 5)
    # walks of 4 nodes: 0123, 1234, 234 (stops: 4 has no out-edge), 34, 4
    # window 2: (0,1)(0,2)(1,2)(1,3)(2,3) + (1,2)(1,3)(2,3)(2,4)(3,4) + (2,3)(2,4)(3,4) + (3,4)
    assert pairs(g, per_node=1, length=4, window=2) == {
        (0, 1): 1, (0, 2): 1, (1, 2): 2, (1, 3): 2, (2, 3): 3, (2, 4): 2, (3, 4): 3}
    # window 1: the walked edges only
    assert pairs(g, per_node=1, length=4, window=1) == {(0, 1): 1, (1, 2): 2, (2, 3): 3, (3, 4): 3}
    # a window past the walk's end: every later node of the walk; 3 walks per node: 3x the counts
    w10 = pairs(g, per_node=3, length=4, window=10)
    assert w10 == {k: 3 * v for k, v in {(0, 1): 1, (0, 2): 1, (0, 3): 1, (1, 2): 2, (1, 3): 2,
                                         (1, 4): 1, (2, 3): 3, (2, 4): 2, (3, 4): 3}.items()}
    assert sum(w10.values()) == 3 * (6 + 6 + 3 + 1)


def test_self_pairs_dropped_and_order_kept():
    g = WalkGraph(np.array([0, 1]), np.array([1, 0]), 2)  # 0 <-> 1: walks alternate
    # from 0: 0101 -> (0,1)(0,0)x(0,1)(1,0)(1,1)x(0,1); from 1: 1010 -> the mirror image
    assert pairs(g, per_node=1, length=4, window=3) == {(0, 1): 4, (1, 0): 4}


def _chi2(counts: np.ndarray, probs: np.ndarray) -> float:
    expected = counts.sum() * probs
    return float(((counts - expected) ** 2 / expected).sum())


@pytest.mark.parametrize("p,q", [(0.5, 2.0), (4.0, 0.25), (1.0, 1.0)])
def test_node2vec_bias_matches_closed_form(p, q):
    # undirected 0-1, 0-2, 1-2, 1-3: after 0 -> 1 the next node is 0 (back: 1/p), 2 (a neighbour
    # of 0: 1) or 3 (farther: 1/q)
    e = [(0, 1), (0, 2), (1, 2), (1, 3)]
    lhs = np.array([a for a, b in e] + [b for a, b in e])
    rhs = np.array([b for a, b in e] + [a for a, b in e])
    g = WalkGraph(lhs, rhs, 4)
    n = 60_000
    walks = random_walks(g.indptr, g.indices, np.zeros(n, np.int32), 3, p, q, 7, np.empty((n, 3), np.int32))
    nxt = walks[walks[:, 1] == 1, 2]
    assert len(nxt) > 0.45 * n  # the first step is uniform over 0's two neighbours
    counts = np.array([(nxt == x).sum() for x in (0, 2, 3)])
    w = np.array([1 / p, 1.0, 1 / q])
    # 2 degrees of freedom: P(chi2 > 18.4) = 1e-4; a uniform step instead of the bias gives
    # chi2 in the thousands for the biased cases
    assert _chi2(counts, w / w.sum()) < 18.4, counts
    if p != q:
        assert _chi2(counts, np.full(3, 1 / 3)) > 200


def _dataset(lhs, rhs, n) -> Dataset:
    ds = Dataset("g", ["entity"], {"entity": None}, ["friend"], np.zeros((1, 2), np.int32),
                 entity_counts={"entity": n})
    ds.splits["train"] = Edges(np.asarray(lhs, np.int64), np.asarray(rhs, np.int64),
                               np.zeros(len(lhs), np.int32))
    return ds


def _undirected_graph(n=60, m=200, seed=0):
    rng = np.random.default_rng(seed)
    a, b = rng.integers(n, size=m), rng.integers(n, size=m)
    keep = a != b
    return np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]])


@pytest.mark.parametrize("on_disk", [False, True])
def test_partitioned_buckets_hold_exactly_the_walk_pairs(on_disk, tmp_path):
    lhs, rhs = _undirected_graph()
    ds = _dataset(lhs, rhs, 60)
    cfg = WalksConfig(per_node=2, length=6, window=3, p=0.5, q=2.0, seed=3)
    want = pairs(WalkGraph(lhs, rhs, 60), **vars(cfg))
    tp = TypePartitions("entity", 60, 2, 0)
    edges = walk_edges(cfg, ds, PartitionLayout([tp]), str(tmp_path / "edges") if on_disk else None)
    assert (edges.n_lhs, edges.n_rhs) == (2, 2)
    got: Counter = Counter()
    for i in range(2):
        for j in range(2):
            lo, ro, rel, w = edges.read((i, j)).result()
            assert len(lo) == edges.count((i, j)) and w is None and not rel.any()
            assert lo.max(initial=-1) < tp.sizes[i] and ro.max(initial=-1) < tp.sizes[j]
            got.update(zip(tp.members[i][lo].tolist(), tp.members[j][ro].tolist(), strict=True))
    assert got == want and sum(want.values()) > 500
    if on_disk:
        edges.close()


def test_walk_config_errors_name_the_key():
    from jgraph.errors import ConfigError

    ds = _dataset([0, 1], [1, 0], 2)
    layout = PartitionLayout([TypePartitions("entity", 2, 1, 0)])
    with pytest.raises(ConfigError, match="data.walks.*window"):
        walk_edges(WalksConfig(per_node=1, window=0), ds, layout)
    ds.entity_types, ds.relation_types = ["user", "group"], np.array([[0, 1]], np.int32)
    with pytest.raises(ConfigError, match="one entity type"):
        walk_edges(WalksConfig(per_node=1), ds, layout)


@pytest.mark.integration
def test_walks_train_a_partitioned_run(tmp_path):
    """data.walks feeds the trainer's buckets (2 partitions, edges streamed through
    storage.edge_dir): the run trains on the walks' pair count, not the graph's edge count."""
    from jgraph.train.run import run

    cfg = config_of(["+debug=tiny", "data.toy.num_relations=1", "data.walks.per_node=2",
                     "data.walks.length=5", "data.walks.window=2", "entities.entity.num_partitions=2",
                     "model.operator=none", "model.reciprocal=false", "storage.save=false",
                     f"storage.edge_dir={tmp_path / 'edges'}", "eval.splits=[]"])
    m = run(cfg, str(tmp_path / "run"))
    n_pairs = m["history"][0]["edges"]
    assert n_pairs > 2 * 300 * 5  # ~2 x 300 walks x 7 pairs, against 2,700 train edges
    assert n_pairs <= 2 * 300 * pairs_per_walk(5, 2) and np.isfinite(m["history"][0]["loss"])
    assert (tmp_path / "edges" / "edges.json").is_file()
