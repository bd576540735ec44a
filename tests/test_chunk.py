"""Chunking a bucket's edges into fixed-shape batches (jgraph.plan.batches.make_batches).

Checked: every edge appears exactly once with its own (lhs, rhs, rel, weight); a chunk never mixes
groups (relations in standard mode); valid entries form a prefix of their chunk; padding is -1 on
both sides with weight 0; arrays are [num_blocks * S, C, P] and the blocks built one at a time
make up the whole; the number of real batches is ceil(sum over groups of ceil(group size / P) / C);
the result is a function of the seed; per-relation shifts are added to lhs / rhs. The lazy
shuffle (`Shuffle`) is a permutation of each group, depends on the seed, and looks uniform.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest

from jgraph.plan.batches import Shuffle, block_workers, make_batches


class Whole(NamedTuple):
    """Every batch of a bucket at once (Batches.arrays()) and the number of real batches."""

    lhs: np.ndarray
    rhs: np.ndarray
    rel: np.ndarray
    weight: np.ndarray
    num_batches: int


def _edges(e: int, groups: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    lhs = np.arange(e) * 3 + 1  # edge i is identified by its lhs; rhs / weight derived from it
    rhs = lhs + 1000
    rel = rng.integers(0, groups, e) if groups else np.zeros(e, np.int64)
    weight = (np.arange(e) + 1).astype(np.float32) / 8
    return lhs, rhs, rel, weight


CASES = [  # (edges, groups (0 = group None), P, C, S)
    (0, 0, 4, 2, 3),
    (1, 0, 4, 2, 1),
    (37, 0, 5, 3, 2),
    (40, 0, 4, 2, 5),
    (53, 3, 4, 3, 2),
    (64, 5, 3, 2, 4),
    (17, 17, 2, 1, 1),
]


@pytest.mark.parametrize("e, groups, p, c, s", CASES)
def test_make_batches_invariants(e, groups, p, c, s):
    lhs, rhs, rel, weight = _edges(e, groups)
    group = rel if groups else None
    bb = make_batches(lhs, rhs, rel, weight, group, p, c, s, np.random.default_rng(1))
    b = Whole(*bb.arrays(), bb.num_batches)
    assert bb.num_blocks(s) == -(-b.num_batches // s)
    blocks = [bb.block(i, s)[0] for i in range(b.lhs.shape[0] // s)]
    for k, a in enumerate(b[:4]):  # the blocks, one after another, are the whole
        np.testing.assert_array_equal(np.concatenate([blk[k] for blk in blocks]), a)

    # shapes: [num_blocks * S, C, P], every array the same; dtypes as documented
    n = b.lhs.shape[0]
    assert n % s == 0 and n >= s
    for a in (b.lhs, b.rhs, b.rel, b.weight):
        assert a.shape == (n, c, p)
    assert b.lhs.dtype == b.rhs.dtype == b.rel.dtype == np.int32 and b.weight.dtype == np.float32

    # the number of real batches: each group's chunks, packed C to a batch
    sizes = np.bincount(rel, minlength=1) if groups else np.array([e])
    num_chunks = int(np.sum(-(-sizes // p)))
    assert b.num_batches == -(-num_chunks // c)
    assert n == max(1, -(-b.num_batches // s)) * s

    # every edge exactly once, with its own rhs / rel / weight
    valid = b.lhs >= 0
    assert valid.sum() == e
    got = np.sort(b.lhs[valid])
    np.testing.assert_array_equal(got, np.sort(lhs))
    idx = (b.lhs[valid] - 1) // 3
    np.testing.assert_array_equal(b.rhs[valid], rhs[idx])
    np.testing.assert_array_equal(b.rel[valid], rel[idx])
    np.testing.assert_array_equal(b.weight[valid], weight[idx])

    # padding: -1 on both sides, weight 0; nothing real after the last real batch
    np.testing.assert_array_equal(b.rhs[~valid], -1)
    np.testing.assert_array_equal(b.weight[~valid], 0.0)
    assert not valid[b.num_batches :].any()

    # chunks: one group each, valid entries first, and no empty chunk inside the real batches
    chunks_valid = valid.reshape(-1, p)
    chunks_rel = b.rel.reshape(-1, p)
    counts = chunks_valid.sum(1)
    for cv, cr, k in zip(chunks_valid, chunks_rel, counts, strict=True):
        assert cv[:k].all() and not cv[k:].any()
        assert len(set(cr[:k].tolist())) <= 1
    assert (counts > 0).sum() == num_chunks
    assert ((counts > 0) & (counts < p)).sum() <= len(sizes)  # at most one partial chunk per group


def test_block_slices():
    """block(i, S): batches [i*S, (i+1)*S) and how many of them are real."""
    lhs, rhs, rel, weight = _edges(23, 0)
    b = make_batches(lhs, rhs, rel, weight, None, 4, 2, 2, np.random.default_rng(0))
    assert b.num_batches == 3  # ceil(23 / 4) = 6 chunks -> 3 batches -> 2 blocks of 2
    (l0, r0, rel0, w0), n0 = b.block(0, 2)
    (l1, _, _, _), n1 = b.block(1, 2)
    assert (n0, n1) == (2, 1)
    whole = b.arrays()[0]
    np.testing.assert_array_equal(l0, whole[:2])
    np.testing.assert_array_equal(l1, whole[2:4])
    assert l0.shape == (2, 2, 4) and (whole[3] == -1).all()  # the padding batch
    assert b.block(2, 2)[1] == 0


def test_shift_adds_each_relations_start():
    """With `shift`, lhs / rhs are offsets and each edge's relation adds its types' first rows."""
    lhs, rhs, rel, weight = _edges(40, 3)
    shift = (np.array([0, 100_000, 200_000]), np.array([7, 8, 9]))
    b = Whole(*make_batches(lhs, rhs, rel, weight, rel, 4, 2, 2, np.random.default_rng(0),
                            shift).arrays(), 0)
    valid = b.lhs >= 0
    idx = (b.lhs[valid] - shift[0][b.rel[valid]] - 1) // 3
    np.testing.assert_array_equal(np.sort(idx), np.arange(40))
    np.testing.assert_array_equal(b.rhs[valid], rhs[idx] + shift[1][rel[idx]])
    np.testing.assert_array_equal(b.rel[valid], rel[idx])
    np.testing.assert_array_equal(b.rhs[~valid], -1)


def test_weight_none_means_one():
    lhs, rhs, rel, _ = _edges(10, 0)
    b = Whole(*make_batches(lhs, rhs, rel, None, None, 4, 1, 1, np.random.default_rng(0)).arrays(), 0)
    valid = b.lhs >= 0
    np.testing.assert_array_equal(b.weight[valid], 1.0)
    np.testing.assert_array_equal(b.weight[~valid], 0.0)


@pytest.mark.parametrize("groups", [0, 3])
def test_deterministic_for_a_seed(groups):
    """Same seed -> identical batches; another seed -> another shuffle (of the same edges)."""
    lhs, rhs, rel, weight = _edges(60, groups)
    group = rel if groups else None
    def make(seed):
        b = make_batches(lhs, rhs, rel, weight, group, 4, 2, 2, np.random.default_rng(seed))
        return Whole(*b.arrays(), b.num_batches)

    a, b, other = make(7), make(7), make(8)
    for x, y in zip(a[:4], b[:4], strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.num_batches == b.num_batches == other.num_batches
    assert not np.array_equal(a.lhs, other.lhs)
    np.testing.assert_array_equal(np.sort(a.lhs.ravel()), np.sort(other.lhs.ravel()))


def test_groups_are_mixed_across_chunks_of_a_batch():
    """Chunks are shuffled, so (with many groups) a batch does not hold one group only, and the
    order of chunks is not sorted by group."""
    lhs, rhs, rel, weight = _edges(400, 8)
    bb = make_batches(lhs, rhs, rel, weight, rel, 5, 4, 1, np.random.default_rng(3))
    b = Whole(*bb.arrays(), bb.num_batches)
    first_rel = b.rel[: b.num_batches, :, 0]  # the group of each chunk
    assert any(len(set(row.tolist())) > 1 for row in first_rel)
    flat = first_rel.ravel()
    assert not np.all(flat[:-1] <= flat[1:])


# ---------------------------------------------------------------- Shuffle (the lazy permutation)
@pytest.mark.parametrize("sizes", [[1], [2], [3, 5, 16, 17], [1000], [4099, 1, 64]])
def test_shuffle_is_a_permutation_of_each_domain(sizes):
    sh = Shuffle(np.array(sizes), np.random.default_rng(0))
    for g, n in enumerate(sizes):
        got = sh(np.full(n, g), np.arange(n))
        assert got.dtype == np.int64
        np.testing.assert_array_equal(np.sort(got), np.arange(n))


def test_shuffle_depends_on_the_seed_and_the_domain():
    n = 500
    a = Shuffle(np.array([n, n]), np.random.default_rng(1))
    b = Shuffle(np.array([n, n]), np.random.default_rng(1))
    c = Shuffle(np.array([n, n]), np.random.default_rng(2))
    x = np.arange(n)
    np.testing.assert_array_equal(a(np.zeros(n, int), x), b(np.zeros(n, int), x))
    assert not np.array_equal(a(np.zeros(n, int), x), c(np.zeros(n, int), x))
    assert not np.array_equal(a(np.zeros(n, int), x), a(np.ones(n, int), x))


def test_shuffle_looks_uniform():
    """Over many seeds, where 0 goes is uniform over [0, n) and 0 lands before 1 half the time;
    on one large domain neighbours land far apart and position and image are uncorrelated."""
    n, seeds = 8, 4000
    first = np.empty(seeds, np.int64)
    before = 0
    for s in range(seeds):
        out = Shuffle(np.array([n]), np.random.default_rng(s))(np.zeros(2, int), np.arange(2))
        first[s] = out[0]
        before += out[0] < out[1]
    counts = np.bincount(first, minlength=n)
    assert counts.min() > 0.8 * seeds / n and counts.max() < 1.2 * seeds / n, counts
    assert abs(before / seeds - 0.5) < 0.04
    n = 100_003
    y = Shuffle(np.array([n]), np.random.default_rng(0))(np.zeros(n, int), np.arange(n))
    assert abs(np.corrcoef(np.arange(n), y)[0, 1]) < 0.02
    assert abs(np.mean(np.abs(np.diff(y))) / (n / 3) - 1) < 0.05  # n/3: two independent points


def test_shuffle_of_domains_beyond_32_bits():
    n = 2**33 + 7
    sh = Shuffle(np.array([5, n]), np.random.default_rng(0))
    got = sh(np.ones(10_000, int), np.arange(10_000))
    assert got.min() >= 0 and got.max() < n and np.unique(got).size == got.size
    assert got.max() > 2**32  # the images spread over the whole 64-bit domain


def test_blocks_filled_by_several_threads_equal_one_thread():
    """A block large enough to be split between threads (>= 65,536 slots per thread) comes out the
    same as filled by one, with several groups, weights and shifts."""
    e, p, c, s = 150_000, 50, 100, 48  # one block of 240,000 slots: three threads
    lhs, rhs, rel, weight = _edges(e, 5)
    shift = (np.arange(5) * 7, np.arange(5) * 11)
    one, three = (make_batches(lhs, rhs, rel, weight, rel, p, c, s, np.random.default_rng(3), shift,
                               workers=w) for w in (1, 3))
    for i in range(one.num_blocks(s)):
        (a, n), (b, m) = one.block(i, s), three.block(i, s)
        assert n == m
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    got = one.arrays()[0]
    np.testing.assert_array_equal(np.sort(got[got >= 0]), np.sort(lhs + shift[0][rel]))


def test_block_workers():
    assert block_workers("cpu", 16) == 1
    assert block_workers("gpu", 16) == 8
    assert block_workers("gpu", 2) == 1
