"""Edge buckets and the orders they are trained in (PBG `bucket_scheduling.py` semantics).

Bucket (i, j) holds the edges whose lhs entity is in partition i and rhs entity in partition j
(0 for an unpartitioned type). Orders are generated from (seed, epoch), so a resumed run replays
the same order and continues after the last completed bucket.
"""

from __future__ import annotations

import random
from concurrent.futures import Future
from dataclasses import dataclass

import numpy as np

Bucket = tuple[int, int]
ORDERS = ("inside_out", "outside_in", "affinity", "random", "beta")


def bucket_order(n_lhs: int, n_rhs: int, order: str, seed: int, epoch: int,
                 buffer: int = 2) -> list[Bucket]:
    """All n_lhs x n_rhs buckets in the named order (deterministic for (seed, epoch)); `buffer`:
    the partition slots per partitioned type, which only "beta" uses."""
    gen = random.Random(f"{seed}:{epoch}")
    if order == "beta":
        return _beta(n_lhs, n_rhs, buffer, gen)
    if order == "random":
        buckets = [(i, j) for i in range(n_lhs) for j in range(n_rhs)]
        gen.shuffle(buckets)
        return buckets
    if order == "affinity":
        return _affinity(n_lhs, n_rhs, gen)
    if order in ("inside_out", "outside_in"):
        layers = [_layer(n_lhs, n_rhs, i, gen) for i in range(min(n_lhs, n_rhs))]
        if order == "inside_out":
            layers.reverse()
        return [b for layer in layers for b in layer]
    raise ValueError(f"storage.bucket_order must be one of {', '.join(ORDERS)}, got {order!r}")


def _layer(n_lhs: int, n_rhs: int, i: int, gen: random.Random) -> list[Bucket]:
    """Layer i: buckets with min(lhs, rhs) == i; a bucket and its transpose are adjacent."""
    pairs: list[list[Bucket]] = [[(i, i)]]
    for p in range(i + 1, max(n_lhs, n_rhs)):
        pair = []
        if p < n_lhs:
            pair.append((p, i))
        if p < n_rhs:
            pair.append((i, p))
        gen.shuffle(pair)
        pairs.append(pair)
    gen.shuffle(pairs)
    return [b for pair in pairs for b in pair]


def _beta(n_lhs: int, n_rhs: int, buffer: int, gen: random.Random) -> list[Bucket]:
    """A buffer-aware order (after the BETA ordering of Marius, Mohoney et al., OSDI'21): with
    `buffer` = c slots, the (shuffled) partitions are cut into groups of c - 1. Phase k holds group
    k in c - 1 slots and trains the buckets inside it, each new member's buckets right after it
    comes in; then the last slot cycles through every later partition x, training the buckets
    between x and the group ((a, x) and (x, a), a in the group). The next group's members come last
    in that cycle, so the phase change keeps one of them. Every bucket once; about
    P + P^2 / (2 (c - 1)) partition loads per type with furthest-next-use eviction (inside_out with
    two slots: about P^2 / 2). Unequal sides (one side unpartitioned): the square order's buckets
    that exist."""
    n = max(n_lhs, n_rhs)
    if n <= 0 or min(n_lhs, n_rhs) <= 0:
        return []
    perm = list(range(n))
    gen.shuffle(perm)
    f = max(1, min(buffer, n) - 1)
    groups = [perm[i : i + f] for i in range(0, n, f)]
    out: list[Bucket] = []
    for k, group in enumerate(groups):
        for j, a in enumerate(group):  # inside the group: each member's buckets as it comes in
            for b in group[:j]:
                out += [(b, a), (a, b)] if gen.random() < 0.5 else [(a, b), (b, a)]
            out.append((a, a))
        later = [x for g in groups[k + 2 :] for x in g]
        gen.shuffle(later)
        nxt = list(groups[k + 1]) if k + 1 < len(groups) else []
        gen.shuffle(nxt)
        if nxt:  # the next phase starts with the member cycled in last (still resident)
            groups[k + 1] = nxt[::-1]
        for x in later + nxt:  # the last slot cycles; the next group's members last
            for a in group:
                out += [(a, x), (x, a)] if gen.random() < 0.5 else [(x, a), (a, x)]
    return [(i, j) for i, j in out if i < n_lhs and j < n_rhs]


def _affinity(n_lhs: int, n_rhs: int, gen: random.Random) -> list[Bucket]:
    """Start anywhere; prefer the transpose, then a bucket sharing a partition, then any."""
    if n_lhs <= 0 or n_rhs <= 0:
        return []
    remaining = {(i, j) for i in range(n_lhs) for j in range(n_rhs)}
    everything = sorted(remaining)
    gen.shuffle(everything)
    by_part: list[list[Bucket]] = [[] for _ in range(max(n_lhs, n_rhs))]
    for b in sorted(remaining):
        by_part[b[0]].append(b)
        by_part[b[1]].append(b)
    for lst in by_part:
        gen.shuffle(lst)
    b = everything.pop()
    remaining.discard(b)
    out = [b]
    while remaining:
        t = (b[1], b[0])
        if t in remaining:
            remaining.discard(t)
            out.append(t)
            if not remaining:
                break
        same_l, same_r = by_part[b[0]], by_part[b[1]]
        nxt = None
        while same_l or same_r:
            (chosen,) = gen.choices([same_l, same_r], weights=[len(same_l), len(same_r)])
            cand = chosen.pop()
            if cand in remaining:
                nxt = cand
                break
        while nxt is None:
            cand = everything.pop()
            if cand in remaining:
                nxt = cand
        remaining.discard(nxt)
        out.append(nxt)
        b = nxt
    return out


@dataclass
class BucketedEdges:
    """Edges grouped by bucket, with partition-local offsets (pure numpy, in memory).

    For bucket (i, j): edges idx = order[start[b]:start[b + 1]], b = i * n_rhs + j.
    """

    lhs_off: np.ndarray  # int64 [E] row of the lhs entity inside its partition
    rhs_off: np.ndarray  # int64 [E]
    rel: np.ndarray  # int32 [E]
    weight: np.ndarray | None  # float32 [E]
    order: np.ndarray  # int64 [E] edges sorted by bucket
    start: np.ndarray  # int64 [n_lhs * n_rhs + 1]
    n_lhs: int
    n_rhs: int

    def count(self, bucket: Bucket) -> int:
        b = bucket[0] * self.n_rhs + bucket[1]
        return int(self.start[b + 1] - self.start[b])

    def edges(self, bucket: Bucket, chunk: int = 0, num_chunks: int = 1
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """(lhs_off, rhs_off, rel, weight) of edge chunk `chunk` (of `num_chunks`) of a bucket."""
        b = bucket[0] * self.n_rhs + bucket[1]
        count = int(self.start[b + 1] - self.start[b])
        size = -(-count // num_chunks) if count else 0
        lo = self.start[b] + min(chunk * size, count)
        hi = self.start[b] + min((chunk + 1) * size, count)
        idx = self.order[lo:hi]
        w = None if self.weight is None else self.weight[idx]
        return self.lhs_off[idx], self.rhs_off[idx], self.rel[idx], w

    def read(self, bucket: Bucket, chunk: int = 0, num_chunks: int = 1) -> Future:
        """The same as a completed future (the interface of storage.edges.EdgeBucketStore)."""
        fut: Future = Future()
        fut.set_result(self.edges(bucket, chunk, num_chunks))
        return fut


def bucketize(lhs: np.ndarray, rhs: np.ndarray, rel: np.ndarray, weight: np.ndarray | None,
              relation_types: np.ndarray, part_of: list[np.ndarray], offset_of: list[np.ndarray],
              num_partitions: list[int]) -> BucketedEdges:
    """Group edges (entity ids per type) into buckets by the partitions of their ends."""
    n_l = max([num_partitions[t] for t in np.unique(relation_types[:, 0])] or [1])
    n_r = max([num_partitions[t] for t in np.unique(relation_types[:, 1])] or [1])
    e = lhs.shape[0]
    lp, rp = np.zeros(e, np.int64), np.zeros(e, np.int64)
    lo, ro = np.empty(e, np.int64), np.empty(e, np.int64)
    for side, ids, parts, offs in ((0, lhs, lp, lo), (1, rhs, rp, ro)):
        types = relation_types[rel, side]
        for t in np.unique(types):
            m = types == t
            offs[m] = offset_of[t][ids[m]]
            if num_partitions[t] > 1:
                parts[m] = part_of[t][ids[m]]
    key = lp * n_r + rp
    order = np.argsort(key, kind="stable")
    start = np.searchsorted(key[order], np.arange(n_l * n_r + 1))
    return BucketedEdges(lo, ro, rel.astype(np.int32), weight, order, start.astype(np.int64), n_l, n_r)
