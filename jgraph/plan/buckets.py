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
ORDERS = ("inside_out", "outside_in", "affinity", "random")


def bucket_order(n_lhs: int, n_rhs: int, order: str, seed: int, epoch: int) -> list[Bucket]:
    """All n_lhs x n_rhs buckets in the named order (deterministic for (seed, epoch))."""
    gen = random.Random(f"{seed}:{epoch}")
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


def assign_rounds(order: list[Bucket], size: int, uses) -> list[list[Bucket | None]]:
    """Rounds of at most `size` buckets that share no partition, taken greedily in `order`; each
    round as a list of length `size` (None: that process idles), a bucket going to the process
    whose previous bucket shares the most partitions with it (so it stays resident).

    uses(bucket) -> set of (entity type, partition) the bucket needs (asked once per bucket).

    "Greedily": round 1 takes, in order, every bucket that fits (room left, no partition taken);
    round 2 does the same with the rest, and so on. That is first fit: each bucket, in order, joins
    the first round with room and none of its partitions. It is found here by skip pointers (a
    union-find over round numbers) past the full rounds and, per partition, past the rounds using
    it: near-constant work per bucket where the round-by-round rescan was quadratic.
    """
    if size == 1:
        return [[b] for b in order]
    need = {b: frozenset(uses(b)) for b in order}
    rounds: list[list[Bucket]] = []
    full: dict[int, int] = {}  # skip pointers: round -> a later round to try instead
    busy: dict = {}  # partition -> its own skip pointers over the rounds using it

    def skip(ptr: dict[int, int], r: int) -> int:
        root = r
        while root in ptr:
            root = ptr[root]
        while r in ptr and ptr[r] != root:  # path compression
            ptr[r], r = root, ptr[r]
        return root

    for b in order:
        u = need[b]
        ptrs = [busy.setdefault(p, {}) for p in u]
        r = -1
        nxt = 0
        while nxt != r:  # until no structure moves it on
            r = nxt
            nxt = skip(full, r)
            for ptr in ptrs:
                nxt = skip(ptr, nxt)
        if r == len(rounds):
            rounds.append([])
        rounds[r].append(b)
        for ptr in ptrs:
            ptr[r] = r + 1
        if len(rounds[r]) == size:
            full[r] = r + 1
    out, prev = [], [None] * size
    for rnd in rounds:
        slots: list[Bucket | None] = [None] * size
        for b in sorted(rnd, key=lambda b: -max(len(need[b] & need[p]) if p else 0 for p in prev)):
            free = [r for r in range(size) if slots[r] is None]
            r = max(free, key=lambda r: (len(need[b] & need[prev[r]]) if prev[r] else -1, -r))
            slots[r] = b
        out.append(slots)
        prev = [s if s is not None else p for s, p in zip(slots, prev, strict=True)]
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
