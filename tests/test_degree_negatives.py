"""Degree-based negatives (negatives.degree_fraction): a share of each chunk's uniform rows drawn in
proportion to the entities' training degrees, from the side's partition in the current bucket
(Marius' degree_fraction, DGL-KE's neg_deg_sample), inside the jitted step: a counter-based uniform
target searched in a per-partition cumulative degree table.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from helpers import model_of
from scipy import stats

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.core.model import Batch, Layout
from jgraph.core.negatives import degree_rows, degree_table, entity_degrees
from jgraph.core.step import NegativeSpec, gather_ids
from jgraph.plan.partition import PartitionLayout


def _cum(degrees_by_region: list[list[int]], starts: list[int], k: int) -> np.ndarray:
    cum = np.zeros(k + 1, np.int64)
    for start, deg in zip(starts, degrees_by_region, strict=True):
        cum[start : start + len(deg)] = np.cumsum(deg)
    return cum.astype(np.int32)


def test_degree_draws_follow_the_degrees():
    """40000 draws per region; Pearson's chi-square of the counts against the degrees is within
    what chance gives (p > 0.001) in both regions; zero-degree rows are never drawn, nothing
    outside the region is; a region with no degree at all is drawn uniformly."""
    deg_a = [5, 0, 1, 12, 3, 0, 7, 2, 30, 1]  # rows 2..11
    deg_b = [100, 1, 1, 50, 8, 0, 20]  # rows 14..20
    cum = jnp.asarray(_cum([deg_a, deg_b, [0, 0, 0]], [2, 14, 22], 26))
    lo, n = jnp.asarray([2, 14, 22], jnp.int32), jnp.asarray([10, 7, 3], jnp.int32)
    rows = np.asarray(degree_rows(jnp.uint32(7), lo, n, cum, 40000))
    assert rows.shape == (3, 40000) and rows.dtype == np.int32
    for c, (start, deg) in enumerate(((2, deg_a), (14, deg_b))):
        deg = np.asarray(deg, np.float64)
        assert rows[c].min() >= start and rows[c].max() < start + deg.size
        counts = np.bincount(rows[c] - start, minlength=deg.size)
        assert np.all(counts[deg == 0] == 0)
        live = deg > 0
        expected = rows.shape[1] * deg[live] / deg.sum()
        chi2 = np.sum((counts[live] - expected) ** 2 / expected)
        p = stats.chi2.sf(chi2, live.sum() - 1)
        assert p > 1e-3, (c, chi2, p)
    # all-zero region: uniform over its 3 rows
    assert set(rows[2].tolist()) == {22, 23, 24}
    assert np.bincount(rows[2] - 22).min() > 12000


def test_degree_draws_are_not_uniform():
    """The test above can fail: uniform draws over the same region are rejected by it."""
    deg = np.asarray([100, 1, 1, 50, 8, 2, 20], np.float64)
    uniform = np.random.default_rng(0).integers(0, 7, 40000)
    expected = 40000 * deg / deg.sum()
    chi2 = np.sum((np.bincount(uniform, minlength=7) - expected) ** 2 / expected)
    assert stats.chi2.sf(chi2, 6) < 1e-10


def test_entity_degrees_per_type():
    """Relation 0: t0 -> t1, relation 1: t1 -> t1. Type 0 counts heads of relation 0 only; type 1
    tails of both and heads of relation 1."""
    lhs = np.array([0, 0, 2, 1, 3])
    rhs = np.array([1, 2, 2, 3, 3])
    rel = np.array([0, 0, 0, 1, 1])
    deg = entity_degrees(lhs, rhs, rel, np.array([[0, 1], [1, 1]]), [3, 4])
    np.testing.assert_array_equal(deg[0], [2, 0, 1])
    np.testing.assert_array_equal(deg[1], [0, 2, 2, 3])  # 1: tail + head; 2: tail x2; 3: 2 tails + head


def test_degree_table_of_a_bucket():
    """Two partitions of one type; bucket (0, 1) with partition 0 in slot 1 and partition 1 in slot
    0: each slot's rows hold the running degree sum of its partition's members, in row order."""
    layout = PartitionLayout.build({"e": 7}, {"e": 2}, seed=0)
    tp = layout.types[0]
    degrees = [np.array([3, 1, 4, 1, 5, 9, 2])]
    table = degree_table(layout, (0, 1), {(0, 0): 1, (0, 1): 0}, degrees)
    assert table.shape == (layout.num_rows + 1,) and table.dtype == np.int32
    for part, slot in ((0, 1), (1, 0)):
        start = layout.slot_start[0][slot]
        run = np.cumsum(degrees[0][tp.members[part]])
        np.testing.assert_array_equal(table[start : start + run.size], run)


def test_gather_ids_draw_the_degree_share_last():
    """NegativeSpec(num_degree=d): of a side's U uniform columns the last d are degree draws (here
    only row 3 of the lhs region and row 12 of the rhs region have a degree), the first U - d
    uniform over the region."""
    model = model_of(operator_of_relation=["none"], relation_types=np.zeros((1, 2)))
    layout = Layout(jnp.asarray([[0, 10]], jnp.int32), jnp.asarray([[5, 5]], jnp.int32),
                    jnp.asarray(_cum([[0, 0, 0, 4, 0], [0, 0, 1, 0, 0]], [0, 10], 16)))
    batch = Batch(lhs=jnp.asarray([[0, 1]], jnp.int32), rhs=jnp.asarray([[10, 11]], jnp.int32),
                  rel=jnp.zeros((1, 2), jnp.int32), weight=jnp.ones((1, 2), jnp.float32))
    u, d = 400, 100
    ids = np.asarray(gather_ids(model, NegativeSpec(u, True, False, (True, True), num_degree=d), batch,
                                layout, jnp.uint32(5)))
    lhs_u, rhs_u = ids[0, 2 : 2 + u], ids[0, 4 + u :]
    assert set(lhs_u[: u - d].tolist()) == set(range(0, 5)) and set(lhs_u[u - d :].tolist()) == {3}
    assert set(rhs_u[: u - d].tolist()) == set(range(10, 15)) and set(rhs_u[u - d :].tolist()) == {12}
