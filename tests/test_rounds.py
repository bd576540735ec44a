"""Rounds of a distributed run (plan/rounds.py, issue 24 item 10): first fit in the order, no two
buckets of a round sharing a partition, each bucket once, the same rounds as the round-by-round
rescan it replaced (which was quadratic in the buckets: P=1024 took 12-29 s)."""

from __future__ import annotations

import pytest

from jgraph.plan.buckets import bucket_order
from jgraph.plan.rounds import assign_rounds

ORDERS = ("inside_out", "outside_in", "affinity", "random")


def _rescan(order, size, uses):
    """assign_rounds as it was before issue 24 (a rescan of the remaining buckets per round, with
    each bucket's set of (type, partition)), the reference the fast one must match."""
    remaining, rounds = list(order), []
    while remaining:
        taken: set = set()
        rnd, rest = [], []
        for b in remaining:
            u = uses(b)
            if len(rnd) < size and not (u & taken):
                rnd.append(b)
                taken |= u
            else:
                rest.append(b)
        rounds.append(rnd)
        remaining = rest
    out, prev = [], [None] * size
    for rnd in rounds:
        slots = [None] * size
        for b in sorted(rnd, key=lambda b: -max(len(uses(b) & uses(p)) if p else 0 for p in prev)):
            free = [r for r in range(size) if slots[r] is None]
            r = max(free, key=lambda r: (len(uses(b) & uses(prev[r])) if prev[r] else -1, -r))
            slots[r] = b
        out.append(slots)
        prev = [s if s is not None else p for s, p in zip(slots, prev, strict=True)]
    return out


def _uses(types: int):
    """The scheduler's: bucket (i, j) trains partitions i and j of every (partitioned) type."""
    return lambda b: {(t, p) for t in range(types) for p in b}


@pytest.mark.parametrize("order", ORDERS)
def test_assign_rounds_matches_the_round_by_round_rescan(order):
    for size in (1, 2, 3, 4, 8):
        for parts in (1, 2, 3, 5, 8, 13):
            for seed, types in ((0, 1), (1, 2)):
                buckets = bucket_order(parts, parts, order, seed, 0)
                want = _rescan(buckets, size, _uses(types))
                assert assign_rounds(buckets, size) == want, (order, size, parts, types)


@pytest.mark.parametrize("size", [2, 5, 7])
def test_rounds_are_valid_and_first_fit(size):
    """Larger than the rescan comparison: every bucket once, full width rows, no two buckets of a
    round sharing a partition, and no bucket could have joined an earlier round (first fit)."""
    order = bucket_order(48, 48, "random", size, 0)
    rounds = assign_rounds(order, size)
    assert all(len(r) == size for r in rounds)
    flat = [b for r in rounds for b in r if b is not None]
    assert sorted(flat) == sorted(order) and len(flat) == len(order)
    seen = [set() for _ in rounds]
    room = [0] * len(rounds)
    where = {}
    for k, r in enumerate(rounds):
        for b in r:
            if b is not None:
                assert not (set(b) & seen[k]), (k, r)
                seen[k] |= set(b)
                room[k] += 1
                where[b] = k
    # first fit, in order: at its turn, every earlier round was full or used one of its partitions
    taken = [set() for _ in rounds]
    count = [0] * len(rounds)
    for b in order:
        k = where[b]
        for e in range(k):
            assert count[e] == size or set(b) & taken[e], (b, k, e)
        taken[k] |= set(b)
        count[k] += 1
    assert len(rounds) >= max(-(-len(order) // size), 2 * 48 - 1)  # each partition: 95 buckets


def test_a_process_keeps_its_partitions_across_rounds():
    """Two processes on (0,0),(1,1),(1,0),(0,1)... : the bucket sharing a partition with a process's
    previous one goes to that process, not to the lowest idle one."""
    rounds = assign_rounds([(0, 0), (1, 1), (0, 2), (3, 1)], 2)
    assert rounds == [[(0, 0), (1, 1)], [(0, 2), (3, 1)]]
    rounds = assign_rounds([(0, 0), (1, 1), (3, 1), (0, 2)], 2)
    assert rounds == [[(0, 0), (1, 1)], [(0, 2), (3, 1)]]  # the same, whichever comes first
    assert assign_rounds([], 3) == [] and assign_rounds([(2, 2)], 3) == [[(2, 2), None, None]]
