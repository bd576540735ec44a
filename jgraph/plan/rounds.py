"""Rounds of a distributed run: the buckets of an order grouped so that the buckets trained at once
by the processes never share a partition.

Bucket (i, j) uses partitions i and j (of every partitioned type: a distributed run partitions
every type, all alike), so two buckets conflict when they share an index. Compiled loops (numba):
P=1024 (a million buckets), 2 or 4 processes: 1.0-1.3 s of CPU on the loaded 2-core VM, about
half of it turning the million Python tuples into arrays and back, where the round-by-round
rescan this replaces took 13-14 s of CPU in the same minutes (quadratic in the buckets).
"""

from __future__ import annotations

import gc
import itertools

import numba
import numpy as np

from jgraph.plan.buckets import Bucket

_EMPTY = np.int64(-1)


def assign_rounds(order: list[Bucket], size: int) -> list[list[Bucket | None]]:
    """Rounds of at most `size` buckets that share no partition, taken greedily in `order`; each
    round as a list of length `size` (None: that process idles), a bucket going to the process
    whose previous bucket shares the most partitions with it (so they stay resident; ties: the
    lowest process), the buckets sharing most with the previous round placed first.

    "Greedily": round 1 takes, in order, every bucket that fits (room left, no partition taken);
    round 2 does the same with the rest, and so on. That is first fit: each bucket, in order, joins
    the first round with room and none of its partitions, found by skip pointers (a union-find over
    round numbers) past the full rounds and, per partition, past the rounds using it.
    """
    if size == 1:
        return [[b] for b in order]
    n = len(order)
    if n == 0:
        return []
    ends = np.fromiter(itertools.chain.from_iterable(order), np.int64, 2 * n).reshape(n, 2)
    lhs, rhs = np.ascontiguousarray(ends[:, 0]), np.ascontiguousarray(ends[:, 1])
    rnd = _first_fit(lhs, rhs, size)
    slots = _slots(lhs, rhs, rnd, size, int(rnd.max()) + 1)
    named = [*order, None]  # index -1: idle
    collecting = gc.isenabled()
    gc.disable()  # half a million small lists: the collector's passes over them would take seconds
    try:
        cols = [list(map(named.__getitem__, slots[:, q].tolist())) for q in range(size)]
        return list(map(list, zip(*cols, strict=True)))
    finally:
        if collecting:
            gc.enable()


@numba.njit(cache=True, inline="always")
def _find(ptr: np.ndarray, r: int) -> int:
    """The first round >= r its dense skip pointers (ptr[r] == r: r is free) do not skip."""
    root = r
    while ptr[root] != root:
        root = ptr[root]
    while ptr[r] != root:  # path compression
        ptr[r], r = root, ptr[r]
    return root


@numba.njit(cache=True, inline="always")
def _slot(keys: np.ndarray, off: np.ndarray, mask: np.ndarray, p: int, r: int) -> int:
    """Where round r is (or would go) in partition p's hash table: keys[off[p] : off[p] + mask[p]
    + 1], linear probing, -1 empty."""
    i = int((np.uint64(r) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(32)) & mask[p]
    while keys[off[p] + i] != r and keys[off[p] + i] != _EMPTY:
        i = (i + 1) & mask[p]
    return off[p] + i


@numba.njit(cache=True, inline="always")
def _find_part(keys: np.ndarray, vals: np.ndarray, off: np.ndarray, mask: np.ndarray, p: int,
               r: int) -> int:
    """The first round >= r that partition p does not use: p's skip pointers are the entries
    (round it uses -> a later round) of its hash table."""
    root = r
    i = _slot(keys, off, mask, p, root)
    while keys[i] != _EMPTY:
        root = vals[i]
        i = _slot(keys, off, mask, p, root)
    while r != root:  # path compression
        i = _slot(keys, off, mask, p, r)
        r, vals[i] = vals[i], root
    return root


@numba.njit(cache=True)
def _first_fit(lhs: np.ndarray, rhs: np.ndarray, size: int) -> np.ndarray:
    """int64 [B]: the round of each bucket (lhs[b], rhs[b]) (int64 [B] each), first fit in order."""
    n = lhs.shape[0]
    parts = max(lhs.max(), rhs.max()) + 1
    uses = np.zeros(parts, np.int64)  # buckets per partition: the entries its table gets
    for b in range(n):
        uses[lhs[b]] += 1
        if rhs[b] != lhs[b]:
            uses[rhs[b]] += 1
    off = np.zeros(parts + 1, np.int64)  # each partition's own table (load factor <= 1/2): one
    mask = np.zeros(parts, np.int64)  # partition's pointers stay close together in memory
    for p in range(parts):
        cap = 4
        while cap < 2 * uses[p]:
            cap *= 2
        mask[p] = cap - 1
        off[p + 1] = off[p] + cap
    keys = np.full(off[parts], _EMPTY, np.int64)
    vals = np.empty(off[parts], np.int64)
    full = np.arange(n + 2)  # dense skip pointers past the full rounds
    count = np.zeros(n + 1, np.int64)
    out = np.empty(n, np.int64)
    for b in range(n):
        i, j = lhs[b], rhs[b]
        r, nxt = -1, 0
        while nxt != r:  # until no structure moves it on
            r = nxt
            nxt = _find(full, r)
            nxt = _find_part(keys, vals, off, mask, i, nxt)
            if j != i:
                nxt = _find_part(keys, vals, off, mask, j, nxt)
        out[b] = r
        for p in (i, j):
            s = _slot(keys, off, mask, p, r)
            keys[s], vals[s] = r, r + 1
        count[r] += 1
        if count[r] == size:
            full[r] = r + 1
    return out


@numba.njit(cache=True, inline="always")
def _shared(lhs: np.ndarray, rhs: np.ndarray, a: int, b: int) -> int:
    """How many partitions buckets a and b share (as sets: (i, i) uses one)."""
    n = int(lhs[a] == lhs[b] or lhs[a] == rhs[b])
    if rhs[a] != lhs[a]:
        n += int(rhs[a] == lhs[b] or rhs[a] == rhs[b])
    return n


@numba.njit(cache=True)
def _slots(lhs: np.ndarray, rhs: np.ndarray, rnd: np.ndarray, size: int, rounds: int) -> np.ndarray:
    """int64 [rounds, size]: the bucket index each process trains in each round (-1: idle)."""
    n = lhs.shape[0]
    start = np.zeros(rounds + 1, np.int64)  # the buckets of each round, in order (counting sort)
    for b in range(n):
        start[rnd[b] + 1] += 1
    for k in range(rounds):
        start[k + 1] += start[k]
    members = np.empty(n, np.int64)
    fill = start[:-1].copy()
    for b in range(n):
        members[fill[rnd[b]]] = b
        fill[rnd[b]] += 1
    out = np.full((rounds, size), _EMPTY, np.int64)
    prev = np.full(size, _EMPTY, np.int64)
    m = np.empty(size, np.int64)
    key = np.empty(size, np.int64)
    for k in range(rounds):
        c = start[k + 1] - start[k]
        for x in range(c):  # stable sort, most partitions shared with the previous round first
            b = members[start[k] + x]
            best = 0
            for q in range(size):
                if prev[q] != _EMPTY:
                    best = max(best, _shared(lhs, rhs, b, prev[q]))
            y = x
            while y > 0 and key[y - 1] < best:
                m[y], key[y] = m[y - 1], key[y - 1]
                y -= 1
            m[y], key[y] = b, best
        for x in range(c):
            b = m[x]
            pick, score = -1, -2
            for q in range(size):  # the free process whose previous bucket shares most
                if out[k, q] != _EMPTY:
                    continue
                s = _shared(lhs, rhs, b, prev[q]) if prev[q] != _EMPTY else -1
                if s > score:
                    pick, score = q, s
            out[k, pick] = b
        for q in range(size):
            if out[k, q] != _EMPTY:
                prev[q] = out[k, q]
    return out
