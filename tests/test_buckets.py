"""Bucket orders (PBG bucket_scheduling.py, pbg-reference §1.3) and bucketing edges by partition.

  * every order is a permutation of all n_lhs x n_rhs buckets, a function of (seed, epoch);
  * inside_out / outside_in: layer i = buckets with min(lhs, rhs) == i; outside_in emits layer 0
    first, inside_out the last layer first; a bucket and its transpose are adjacent;
  * affinity: after a bucket comes its transpose if still pending, otherwise (when one is pending)
    a bucket sharing a partition with it;
  * bucketize puts each edge in the bucket of its ends' partitions (0 for unpartitioned types),
    with partition-local offsets.
"""

from __future__ import annotations

import numpy as np
import pytest

from jgraph.plan.buckets import ORDERS, bucket_order, bucketize
from jgraph.plan.partition import TypePartitions

SQUARE = [(p, p) for p in range(1, 7)]
RECTANGULAR = [(1, 3), (3, 1), (2, 5), (5, 2), (4, 3)]
SHAPES = SQUARE + RECTANGULAR


def _all(n_lhs, n_rhs):
    return {(i, j) for i in range(n_lhs) for j in range(n_rhs)}


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("n_lhs, n_rhs", SHAPES)
def test_order_is_a_permutation_and_deterministic(order, n_lhs, n_rhs):
    for seed, epoch in ((0, 0), (3, 1), (11, 7)):
        buckets = bucket_order(n_lhs, n_rhs, order, seed, epoch)
        assert len(buckets) == n_lhs * n_rhs
        assert set(buckets) == _all(n_lhs, n_rhs)
        assert buckets == bucket_order(n_lhs, n_rhs, order, seed, epoch)
        assert all(isinstance(i, int) and isinstance(j, int) for i, j in buckets)


@pytest.mark.parametrize("order", ORDERS)
def test_order_changes_with_seed_and_epoch(order):
    """Shuffled orders differ between epochs (and seeds): not one fixed order replayed forever."""
    by_epoch = {tuple(bucket_order(5, 5, order, 0, epoch)) for epoch in range(6)}
    by_seed = {tuple(bucket_order(5, 5, order, seed, 0)) for seed in range(6)}
    assert len(by_epoch) > 1 and len(by_seed) > 1


@pytest.mark.parametrize("buffer", [2, 3, 4, 7, 20])
@pytest.mark.parametrize("n_lhs, n_rhs", SHAPES + [(16, 16), (13, 13)])
def test_beta_covers_every_bucket_once(buffer, n_lhs, n_rhs):
    """The buffer-aware order is a permutation for every buffer size, a function of (seed, epoch)."""
    for seed, epoch in ((0, 0), (5, 2)):
        buckets = bucket_order(n_lhs, n_rhs, "beta", seed, epoch, buffer)
        assert len(buckets) == n_lhs * n_rhs and set(buckets) == _all(n_lhs, n_rhs)
        assert buckets == bucket_order(n_lhs, n_rhs, "beta", seed, epoch, buffer)


def test_unknown_order_is_an_error():
    with pytest.raises(ValueError, match="inside_out"):
        bucket_order(2, 2, "diagonal_first", 0, 0)


def _check_transposes_adjacent(buckets):
    pos = {b: k for k, b in enumerate(buckets)}
    for (i, j), k in pos.items():
        if i != j and (j, i) in pos:
            assert abs(pos[(j, i)] - k) == 1, f"{(i, j)} and its transpose are not adjacent: {buckets}"


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_lhs, n_rhs", SHAPES)
def test_outside_in_layers(n_lhs, n_rhs, seed):
    """outside_in: layer 0 (row 0 and column 0) first, then layer 1, ...: min(l, r) never decreases."""
    buckets = bucket_order(n_lhs, n_rhs, "outside_in", seed, 0)
    layers = [min(b) for b in buckets]
    assert layers[0] == 0
    assert layers == sorted(layers)
    _check_transposes_adjacent(buckets)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("n_lhs, n_rhs", SHAPES)
def test_inside_out_layers(n_lhs, n_rhs, seed):
    """inside_out (PBG's default): the last layer first, layer 0 last: min(l, r) never increases."""
    buckets = bucket_order(n_lhs, n_rhs, "inside_out", seed, 0)
    layers = [min(b) for b in buckets]
    assert layers[0] == min(n_lhs, n_rhs) - 1 and layers[-1] == 0
    assert layers == sorted(layers, reverse=True)
    _check_transposes_adjacent(buckets)


def test_layers_by_hand():
    """P = 3: layer 0 = {(0,0), (0,1), (1,0), (0,2), (2,0)}, layer 1 = {(1,1), (1,2), (2,1)},
    layer 2 = {(2,2)}."""
    buckets = bucket_order(3, 3, "outside_in", 0, 0)
    assert set(buckets[:5]) == {(0, 0), (0, 1), (1, 0), (0, 2), (2, 0)}
    assert set(buckets[5:8]) == {(1, 1), (1, 2), (2, 1)}
    assert buckets[8] == (2, 2)
    assert bucket_order(3, 3, "inside_out", 0, 0)[0] == (2, 2)


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("n_lhs, n_rhs", SHAPES)
def test_affinity_prefers_transpose_then_shared_partition(n_lhs, n_rhs, seed):
    buckets = bucket_order(n_lhs, n_rhs, "affinity", seed, 0)
    anchor = buckets[0]  # the bucket the next choice is made from (a pair's first member)
    for k in range(len(buckets) - 1):
        cur, nxt = buckets[k], buckets[k + 1]
        pending = set(buckets[k + 1 :])
        transpose = (cur[1], cur[0])
        if cur == anchor and transpose != cur and transpose in pending:
            assert nxt == transpose
            continue
        if any(set(b) & set(anchor) for b in pending):
            assert set(nxt) & set(anchor), f"{nxt} shares no partition with {anchor} in {buckets}"
        anchor = nxt


# ------------------------------------------------------------------------------ bucketize
def _bucketize_case(counts, parts, relation_types, num_edges, seed=0):
    rng = np.random.default_rng(seed)
    tps = [TypePartitions(f"t{i}", c, p, seed=5) for i, (c, p) in enumerate(zip(counts, parts, strict=True))]
    rt = np.asarray(relation_types, np.int32)
    rel = rng.integers(0, len(rt), num_edges)
    lhs = np.array([rng.integers(0, counts[rt[r, 0]]) for r in rel], np.int64)
    rhs = np.array([rng.integers(0, counts[rt[r, 1]]) for r in rel], np.int64)
    weight = rng.random(num_edges).astype(np.float32)
    be = bucketize(lhs, rhs, rel, weight, rt, [t.part_of for t in tps], [t.offset_of for t in tps], parts)
    return tps, rt, lhs, rhs, rel, weight, be


@pytest.mark.parametrize(
    "counts, parts, relation_types, n_lhs, n_rhs",
    [
        ([23], [1], [[0, 0]], 1, 1),
        ([23], [3], [[0, 0], [0, 0]], 3, 3),
        ([17, 6], [4, 1], [[0, 1], [0, 0]], 4, 4),  # rhs side mixes a partitioned and a plain type
        ([17, 6], [4, 1], [[0, 1]], 4, 1),  # n_lhs != n_rhs
        ([9, 14], [1, 2], [[0, 1], [1, 1], [1, 0]], 2, 2),
    ],
)
def test_bucketize_puts_edges_in_their_partitions_bucket(counts, parts, relation_types, n_lhs, n_rhs):
    tps, rt, lhs, rhs, rel, weight, be = _bucketize_case(counts, parts, relation_types, 120)
    assert (be.n_lhs, be.n_rhs) == (n_lhs, n_rhs)
    part = lambda t, i: int(tps[t].part_of[i]) if tps[t].num_partitions > 1 else 0
    seen = []
    for i in range(n_lhs):
        for j in range(n_rhs):
            lo, ro, r, w = be.edges((i, j))
            assert be.count((i, j)) == len(lo) == len(ro) == len(r) == len(w)
            b = be.start[i * n_rhs + j]
            idx = be.order[b : b + len(lo)]
            seen.extend(idx.tolist())
            np.testing.assert_array_equal(r, rel[idx])
            np.testing.assert_array_equal(w, weight[idx])
            for e, l_off, r_off in zip(idx, lo, ro, strict=True):
                tl, tr = rt[rel[e]]
                assert (part(tl, lhs[e]), part(tr, rhs[e])) == (i, j)
                assert l_off == tps[tl].offset_of[lhs[e]] and r_off == tps[tr].offset_of[rhs[e]]
                # the offset is the entity's row in its partition
                assert tps[tl].members[i if tps[tl].num_partitions > 1 else 0][l_off] == lhs[e]
                assert tps[tr].members[j if tps[tr].num_partitions > 1 else 0][r_off] == rhs[e]
    assert sorted(seen) == list(range(len(lhs)))  # every edge exactly once


@pytest.mark.parametrize("num_chunks", [1, 2, 3, 7, 40])
def test_edge_chunks_are_contiguous_ceil_slices(num_chunks):
    """PBG `num_edge_chunks`: chunk k of a bucket of N edges is the contiguous slice
    [k ceil(N/C), (k + 1) ceil(N/C)) of it (the last ones shorter or empty); together the chunks are
    the bucket, in order."""
    _, _, _, _, _, _, be = _bucketize_case([23], [2], [[0, 0]], 90)
    for bucket in ((0, 0), (0, 1), (1, 0), (1, 1)):
        whole = be.edges(bucket)
        n = len(whole[0])
        size = -(-n // num_chunks)
        parts = [be.edges(bucket, k, num_chunks) for k in range(num_chunks)]
        for k, part in enumerate(parts):
            assert len(part[0]) == max(0, min(size, n - k * size))
        for field in range(4):
            np.testing.assert_array_equal(np.concatenate([p[field] for p in parts]), whole[field])


def test_more_partitions_than_entities_is_refused():
    with pytest.raises(ValueError, match=r"entities.user.num_partitions=500 .*300 entities"):
        TypePartitions("user", 300, 500, 0)
    assert TypePartitions("user", 300, 300, 0).sizes.tolist() == [1] * 300
