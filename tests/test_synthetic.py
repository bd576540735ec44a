"""The planted-structure generator (jgraph/data/synthetic.py): its shape statistics, that its
planted model beats chance, that edges are the same however they are generated, and its Parquet."""

import numpy as np
import pyarrow.parquet as pq
import pytest

from jgraph.data.synthetic import Generator, Planted, ceiling, chance_mrr, entity_names, write_parquet


@pytest.fixture(scope="module")
def gen():
    return Generator(Planted(entities=20_000, relations=200, edges=400_000, seed=3, grid=8))  # 64 classes


def _slope(counts: np.ndarray, lo: int, hi: int) -> float:
    """Slope of log(count) against log(rank + 1) over ranks lo..hi of the sorted counts."""
    c = np.sort(counts)[::-1][lo:hi].astype(float)
    r = np.arange(lo, lo + len(c)) + 1.0
    return float(np.polyfit(np.log(r), np.log(c), 1)[0])


def test_shape_statistics(gen):
    lhs, rel, rhs = gen.edges(0, gen.p.edges)
    n = gen.p.entities
    assert lhs.min() >= 0 and max(lhs.max(), rhs.max()) < n and rel.max() < gen.p.relations
    assert np.unique(lhs).size == n  # the first `entities` edges cover every entity
    assert not np.any(lhs == rhs)
    # Zipf relations, exponent 1.0
    assert _slope(np.bincount(rel, minlength=gen.p.relations), 0, 100) == pytest.approx(-1.0, abs=0.1)
    # power-law popularity (rank exponent degree_zipf = 0.8) of heads past the coverage edges and of tails
    heads = np.bincount(lhs[n:], minlength=n)
    assert _slope(heads, 5, 500) == pytest.approx(-0.8, abs=0.12)
    # tails: popularity within each class (ranks past the 64 class leaders)
    assert _slope(np.bincount(rhs, minlength=n), 200, 5000) == pytest.approx(-0.8, abs=0.15)


def test_planted_model_beats_chance_and_its_halves(gen):
    kw = dict(num_edges=2000, batch_negs=0, uniform_negs=200)
    planted, pop, hidden = (ceiling(gen, scorer=s, **kw) for s in ("planted", "popularity", "hidden"))
    assert planted > 10 * chance_mrr(200)
    assert planted > pop + 0.1 and planted > hidden + 0.05
    # against batch negatives (drawn by popularity, like the answers) the hidden half is the best
    kwb = dict(num_edges=2000, batch_negs=200, uniform_negs=200)
    assert ceiling(gen, scorer="hidden", **kwb) > 3 * ceiling(gen, scorer="popularity", **kwb)


def test_tails_follow_the_hidden_rotation(gen):
    lhs, rel, rhs = (a.astype(np.int64) for a in gen.edges(gen.p.entities, 50_000))
    k = gen.p.classes
    from jgraph.data.synthetic import _rotate_np

    want = _rotate_np(gen.rank_of(lhs) % k, gen.shift[rel], gen.p.grid, gen.p.rank)
    share = np.mean(gen.rank_of(rhs) % k == want)
    assert share == pytest.approx(1 - gen.p.noise + gen.p.noise / k, abs=0.02)


def test_edges_do_not_depend_on_blocks(gen):
    whole = gen.edges(1000, 5000)
    parts = [gen.edges(1000 + s, 1000) for s in range(0, 5000, 1000)]
    for w, *ps in zip(whole, *parts, strict=True):
        assert np.array_equal(w, np.concatenate(ps))
    idx = np.array([5999, 1000, 3456])
    for w, a in zip(whole, gen.edges_at(idx), strict=True):
        assert np.array_equal(w[idx - 1000], a)


def test_parquet_shards(tmp_path):
    g = Generator(Planted(entities=500, relations=7, edges=3000, seed=1))
    files = write_parquet(g, str(tmp_path), shard_edges=1000, block=400)
    assert len(files) == 3
    t = pq.read_table(files[1])
    lhs, rel, rhs = g.edges(1000, 1000)
    assert t.column("lhs").to_pylist() == entity_names(lhs).to_pylist()
    assert t.column("rhs").to_pylist()[:3] == entity_names(rhs[:3]).to_pylist()
    assert t.column("rel").to_pylist()[0] == f"synthetic.domain{rel[0] % 97}.property{rel[0]}"
    assert entity_names(np.array([0, 33])).to_pylist() == ["/m/0000000", "/m/0000011"]
