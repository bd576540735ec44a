"""Chunking a bucket's edges into fixed-shape batches (host side, numpy, built block by block).

Edges are shuffled, then grouped so that every chunk holds one group only: one relation in
standard mode (the rhs operator is shared by a chunk's negatives, PBG semantics), one
(lhs type, rhs type) pair with reciprocal relations (negatives must have the right type).
A group's last chunk is padded (-1), chunks are shuffled and packed C to a batch; the batch count is
padded to a multiple of the block length S so every dispatch has one shape.

Nothing of size E is built up front besides (with several groups) the edges' order by group: each
group's shuffle is a pseudorandom permutation evaluated at the slots a block needs (`Shuffle`), so
a bucket's first step does not wait for a permutation of all its edges (10M edges: 1.1 s).
"""

from __future__ import annotations

import numpy as np


def _mix32(z: np.ndarray) -> np.ndarray:
    """A 32-bit integer hash (Wellons' lowbias32), elementwise on uint32: hashrng.hash32 in numpy
    (batches are built on the host, beside the running step)."""
    z = (z ^ (z >> np.uint32(16))) * np.uint32(0x7FEB352D)
    z = (z ^ (z >> np.uint32(15))) * np.uint32(0x846CA68B)
    return z ^ (z >> np.uint32(16))


def _mix64(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


class Shuffle:
    """One pseudorandom permutation of [0, n_g) per domain g, evaluated at any positions without
    being built: a 4-round Feistel network on the 2^b values of b = ceil(log2 n_g) bits (split in
    a high and a low part; each round xors one part with a hash of the other and a round key),
    its outputs outside [0, n_g) walked through it again until they fall inside (cycle walking:
    fewer than 2 passes on average). Each domain has its own round keys, drawn from `rng`."""

    ROUNDS = 4

    def __init__(self, sizes: np.ndarray, rng: np.random.Generator) -> None:
        sizes = np.asarray(sizes, np.int64)
        wide = sizes.size and int(sizes.max()) > 2**32
        self._dtype, self._mix = (np.uint64, _mix64) if wide else (np.uint32, _mix32)
        bits = np.maximum(np.ceil(np.log2(np.maximum(sizes, 1).astype(np.float64))), 2).astype(np.int64)
        t = self._dtype
        self._n = sizes.astype(t)  # [G]
        self._low = (bits // 2).astype(t)  # [G] bits of the low part (the high part: the rest)
        self._low_mask = (t(1) << self._low) - t(1)
        self._high_mask = (t(1) << (bits - bits // 2).astype(t)) - t(1)
        self._keys = rng.integers(0, np.iinfo(t).max, (self.ROUNDS, sizes.size), dtype=t,
                                  endpoint=True)

    def __call__(self, domain: np.ndarray, x: np.ndarray) -> np.ndarray:
        """domain int [M] (which permutation), x int [M] in [0, n_domain) -> int64 [M]."""
        y = np.asarray(x).astype(self._dtype)
        if self._n.size == 1:  # one domain: its constants as scalars (no gathers) on the first pass
            y = self._feistel(y, 0)
            out = np.flatnonzero(y >= self._n[0])
            y[out] = self._walk(y[out], np.zeros(out.size, np.int64))
            return y.astype(np.int64)
        return self._walk(y, np.asarray(domain)).astype(np.int64)

    def _walk(self, y: np.ndarray, d: np.ndarray) -> np.ndarray:
        todo = np.arange(y.size)
        while todo.size:
            dt = d[todo]
            y[todo] = self._feistel(y[todo], dt)
            todo = todo[y[todo] >= self._n[dt]]
        return y

    def _feistel(self, y: np.ndarray, d) -> np.ndarray:
        low, low_mask, high_mask = self._low[d], self._low_mask[d], self._high_mask[d]
        hi, lo = y >> low, y & low_mask
        for r in range(self.ROUNDS):
            key = self._keys[r, d]
            if r % 2:
                lo = lo ^ (self._mix(hi ^ key) & low_mask)
            else:
                hi = hi ^ (self._mix(lo ^ key) & high_mask)
        return (hi << low) | lo


class Batches:
    """Batches of one bucket: C chunks of P edges each, num_blocks * S of them, built one block at
    a time ([S, C, P] arrays on demand).

    Slot k of the bucket (k = (batch * C + chunk) * P + position) holds position q of chunk j of
    group g, where (g, j) is the chunk that the chunk shuffle put at k // P and q = j * P + k % P
    (padding when q >= the group's size); its edge is the group's q-th edge in the group's
    shuffled order. A block is that arithmetic and four gathers for its S * C * P slots, done while
    the previous block trains."""

    def __init__(self, edges: tuple[np.ndarray, ...], weight: np.ndarray | None,
                 shift: tuple[np.ndarray, np.ndarray] | None, order: np.ndarray | None,
                 sizes: np.ndarray, chunk_at: np.ndarray | None, shuffle: Shuffle,
                 shape: tuple[int, int], block: int) -> None:
        self._edges = edges  # (lhs, rhs, rel) int [E]
        self._weight = weight  # float [E], or None for all ones
        if shift is not None and not any(np.any(x) for x in shift):
            shift = None  # every relation's rows start at 0: nothing to add
        self._shift = shift  # (lhs, rhs) int [R] added by relation, or None
        self._order = order  # int [E]: edges sorted by group (None: one group, in input order)
        p = shape[1]
        self._sizes = np.asarray(sizes, np.int64)  # [G] edges per group, in `order`
        self._starts = np.r_[0, np.cumsum(self._sizes)[:-1]].astype(np.int64)
        per_group = -(-self._sizes // p)
        self._first_chunk = np.r_[0, np.cumsum(per_group)[:-1]].astype(np.int64)
        self._num_chunks = int(per_group.sum())
        self._chunk_at = chunk_at  # int [#chunks]: the chunk at each chunk slot (None: identity)
        self._shuffle = shuffle
        self.num_batches = -(-self._num_chunks // shape[0])  # real batches (the rest: padding)
        self._shape = shape  # (C, P)
        self._block = block  # S: the batch count is padded to a multiple of it

    def edge_at(self, first: int, count: int) -> np.ndarray:
        """The edges of chunk slots [first, first + count): int64 [count, P], -1 for padding."""
        p = self._shape[1]
        c = np.arange(first, first + count, dtype=np.int64)
        real = c < self._num_chunks
        if not real.any():
            return np.full((count, p), -1, np.int64)
        c = np.where(real, c, 0)
        cid = c if self._chunk_at is None else self._chunk_at[c]
        g = (np.zeros(count, np.int64) if self._sizes.size == 1
             else np.searchsorted(self._first_chunk, cid, side="right") - 1)
        q = ((cid - self._first_chunk[g]) * p)[:, None] + np.arange(p)  # [count, P] in the group
        ok = real[:, None] & (q < self._sizes[g][:, None])
        r = self._shuffle(np.broadcast_to(g[:, None], q.shape).ravel(), np.where(ok, q, 0).ravel())
        r = r.reshape(q.shape) + self._starts[g][:, None]
        e = r if self._order is None else self._order[r]
        return np.where(ok, e, -1)

    def _take(self, first: int, count: int) -> tuple[np.ndarray, ...]:
        """Chunk slots [first, first + count) as (lhs, rhs, rel, weight) [count // C, C, P]."""
        idx = self.edge_at(first, count).ravel()
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        shape = (-1, *self._shape)
        got = [a[safe] if a.size else np.zeros(idx.shape, np.int32) for a in self._edges]
        if self._shift is not None and self._edges[2].size:
            got[0] = got[0] + self._shift[0][got[2]]
            got[1] = got[1] + self._shift[1][got[2]]
        out = [np.where(valid, a, fill).astype(np.int32, copy=False).reshape(shape)
               for a, fill in zip(got, (-1, -1, 0), strict=True)]
        w = (np.ones(idx.shape, np.float32) if self._weight is None or not self._weight.size
             else self._weight[safe])
        out.append(np.where(valid, w, 0.0).astype(np.float32, copy=False).reshape(shape))
        return tuple(out)

    def block(self, i: int, s: int) -> tuple[tuple[np.ndarray, ...], int]:
        """Block i: (lhs, rhs, rel, weight) arrays [S, C, P] and its number of real batches.

        lhs and rhs are int32 with -1 for padding, rel int32 (0 for padding), weight float32 (0 for
        padding)."""
        per = s * self._shape[0]
        n = max(0, min(s, self.num_batches - i * s))
        return self._take(i * per, per), n

    def num_blocks(self, s: int) -> int:
        return -(-self.num_batches // s)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Every batch at once: (lhs, rhs, rel, weight) [num_blocks * S, C, P] (for tests and small
        buckets)."""
        return self._take(0, max(1, self.num_blocks(self._block)) * self._block * self._shape[0])


def make_batches(
    lhs: np.ndarray,  # int [E] working-table rows (or offsets, with `shift`)
    rhs: np.ndarray,  # int [E]
    rel: np.ndarray,  # int [E]
    weight: np.ndarray | None,  # float [E]
    group: np.ndarray | None,  # int [E] >= 0: edges of different groups never share a chunk
    #                            (int16 sorts 4x faster: numpy's stable sort is then a radix sort)
    chunk: int,  # P
    chunks_per_batch: int,  # C
    block: int,  # S
    rng: np.random.Generator,
    shift: tuple[np.ndarray, np.ndarray] | None = None,  # int [R]: added to lhs / rhs by relation
) -> Batches:
    """The bucket's batches (built block by block, see Batches): the edges shuffled within their
    group, cut into chunks of P, the chunks shuffled (several groups) and packed C to a batch."""
    e = int(lhs.shape[0])
    order, chunk_at = None, None
    sizes = np.array([e], np.int64)
    if group is not None and e and not np.all(group == group[0]):
        order = np.argsort(group, kind="stable")
        sizes = np.bincount(group)
        sizes = sizes[sizes > 0].astype(np.int64)
    num_chunks = int(np.sum(-(-sizes // chunk)))
    if order is not None:
        chunk_at = rng.permutation(num_chunks)  # so a batch mixes groups
    return Batches((lhs, rhs, rel), weight, shift, order, sizes, chunk_at, Shuffle(sizes, rng),
                   (chunks_per_batch, chunk), block)
