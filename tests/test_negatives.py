"""Where negatives come from (pbg-reference §3.2): uniform rows are drawn per chunk, with replacement,
from the partition of that side's entity type in the current bucket; all_negs masks select that
partition minus the positive itself; padding ids are replaced by a real row of the right region.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from helpers import model_of

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.negatives import not_self_mask, region_mask, uniform_rows
from jgraph.core.step import NegativeSpec, gather_ids


def test_uniform_rows_cover_each_chunks_region():
    lo, n = jnp.asarray([0, 10, 25], jnp.int32), jnp.asarray([3, 1, 7], jnp.int32)
    rows = np.asarray(uniform_rows(jnp.uint32(0), lo, n, 400))
    assert rows.shape == (3, 400) and rows.dtype == np.int32
    for c in range(3):
        # every row of the region is drawn (with replacement, 400 draws), nothing outside it
        assert set(rows[c].tolist()) == set(range(int(lo[c]), int(lo[c] + n[c])))
    # roughly uniform: each of chunk 2's 7 rows gets 400/7 ~ 57 draws
    counts = np.bincount(rows[2] - 25, minlength=7)
    assert counts.min() > 25 and counts.max() < 95


def test_region_and_not_self_masks():
    lo, n = jnp.asarray([1, 4], jnp.int32), jnp.asarray([2, 3], jnp.int32)
    region = np.asarray(region_mask(lo, n, 8))
    assert region.shape == (2, 1, 8)
    np.testing.assert_array_equal(region[:, 0], [[0, 1, 1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 0]])
    ns = np.asarray(not_self_mask(jnp.asarray([[2, 5]]), 8))
    assert ns.shape == (1, 2, 8)
    np.testing.assert_array_equal(ns[0, 0], np.arange(8) != 2)
    np.testing.assert_array_equal(ns[0, 1], np.arange(8) != 5)


def two_type_model() -> Model:
    """Two entity types, relations 0: t0 -> t1 and 1: t1 -> t0 (only the types matter here)."""
    return model_of(operator_of_relation=["none", "none"], relation_types=np.array([[0, 1], [1, 0]]),
                    num_types=2)


# lo[type, side], n[type, side]: type 0 lhs rows [0, 5), rhs [10, 16); type 1 lhs [20, 27), rhs [30, 38)
TWO_TYPE_LAYOUT = Layout(jnp.asarray([[0, 10], [20, 30]], jnp.int32),
                         jnp.asarray([[5, 6], [7, 8]], jnp.int32))


def test_gather_ids_use_each_chunks_typed_regions():
    """Two entity types, relations 0: t0 -> t1 and 1: t1 -> t0. Per chunk, gather_ids lays out
    [lhs P | uniform lhs U | rhs P | uniform rhs U] (each side's candidates contiguous); uniform
    rows come from the region of the chunk relation's lhs type on the lhs side and of its rhs type
    on the rhs side; padding reads the region's first row."""
    model = two_type_model()
    layout = TWO_TYPE_LAYOUT
    batch = Batch(
        lhs=jnp.asarray([[1, 2, 3], [21, 22, -1]], jnp.int32),
        rhs=jnp.asarray([[31, 32, 33], [11, 12, -1]], jnp.int32),
        rel=jnp.asarray([[0, 0, 0], [1, 1, 0]], jnp.int32),
        weight=jnp.ones((2, 3), jnp.float32),
    )
    u = 200
    ids = np.asarray(gather_ids(model, NegativeSpec(u, True, False, (True, True)), batch, layout,
                                jnp.uint32(1)))
    assert ids.shape == (2, 3 + 3 + 2 * u)
    np.testing.assert_array_equal(ids[0, :3], [1, 2, 3])
    np.testing.assert_array_equal(ids[0, 3 + u : 6 + u], [31, 32, 33])
    np.testing.assert_array_equal(ids[1, :3], [21, 22, 20])  # padding -> region start
    np.testing.assert_array_equal(ids[1, 3 + u : 6 + u], [11, 12, 10])
    regions = {0: ((0, 5), (30, 38)), 1: ((20, 27), (10, 16))}  # chunk -> (lhs region, rhs region)
    for c, ((l0, l1), (r0, r1)) in regions.items():
        assert set(ids[c, 3 : 3 + u].tolist()) == set(range(l0, l1))
        assert set(ids[c, 6 + u :].tolist()) == set(range(r0, r1))
    # one side's negatives off: only the other side's uniform rows are gathered
    only_rhs = np.asarray(gather_ids(model, NegativeSpec(u, True, False, (False, True)), batch, layout,
                                     jnp.uint32(1)))
    assert only_rhs.shape == (2, 6 + u)
    np.testing.assert_array_equal(only_rhs[0, :6], [1, 2, 3, 31, 32, 33])
    assert set(only_rhs[0, 6:].tolist()) <= set(range(30, 38))


def test_uniform_from_bucket_draws_from_both_partitions_of_the_type():
    """negatives.uniform_from=bucket: a side's uniform rows come from both of the bucket's
    partitions of that side's entity type (its lhs-side and rhs-side regions), each about in
    proportion to its size; the positives' own ids are unchanged."""
    model = two_type_model()
    layout = TWO_TYPE_LAYOUT
    batch = Batch(lhs=jnp.asarray([[1, 2, 3]], jnp.int32), rhs=jnp.asarray([[31, 32, 33]], jnp.int32),
                  rel=jnp.zeros((1, 3), jnp.int32), weight=jnp.ones((1, 3), jnp.float32))
    u = 4000
    spec = NegativeSpec(u, True, False, (True, True), both_partitions=True)
    ids = np.asarray(gather_ids(model, spec, batch, layout, jnp.uint32(2)))
    lhs_u, rhs_u = ids[0, 3 : 3 + u], ids[0, 6 + u :]
    # relation 0 is t0 -> t1: lhs draws from type 0's two regions, rhs from type 1's two
    assert set(lhs_u.tolist()) == set(range(0, 5)) | set(range(10, 16))
    assert set(rhs_u.tolist()) == set(range(20, 27)) | set(range(30, 38))
    assert abs(np.mean(lhs_u < 5) - 5 / 11) < 0.03
    assert abs(np.mean(rhs_u < 27) - 7 / 15) < 0.03
    np.testing.assert_array_equal(ids[0, 3 + u : 6 + u], [31, 32, 33])
    # a diagonal bucket (both sides in one partition) stays inside that partition
    diag = Layout(jnp.asarray([[0, 0], [20, 20]], jnp.int32), jnp.asarray([[5, 5], [7, 7]], jnp.int32))
    ids = np.asarray(gather_ids(model, spec, batch, diag, jnp.uint32(3)))
    assert set(ids[0, 6 + u :].tolist()) == set(range(20, 27))
