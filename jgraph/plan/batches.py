"""Chunking a bucket's edges into fixed-shape batches (host side, built block by block).

Edges are shuffled, then grouped so that every chunk holds one group only: one relation in
standard mode (the rhs operator is shared by a chunk's negatives, PBG semantics), one
(lhs type, rhs type) pair with reciprocal relations (negatives must have the right type).
A group's last chunk is padded (-1), chunks are shuffled and packed C to a batch; the batch count is
padded to a multiple of the block length S so every dispatch has one shape.

Nothing of size E is built up front besides (with several groups) the edges' order by group: each
group's shuffle is a pseudorandom permutation evaluated at the slots a block needs (`Shuffle`), so
a bucket's first step does not wait for a permutation of all its edges (10M edges: 1.1 s).

A block is filled by compiled loops (numba, `_fill`), by several threads beside an accelerator
(`block_workers`): one thread fills 8M edges/s from a 10M-edge bucket on the 2-core CPU machine
(numpy took 5M/s), where a GPU trains tens of millions.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

_M32 = np.uint64(0xFFFFFFFF)


@numba.njit(nogil=True, cache=True, inline="always")
def _mix(z, wide):
    """A hash of uint64 z: splitmix64's finaliser (wide) or, on 32-bit values, Wellons'
    lowbias32 (hashrng.hash32's function, here on the host beside the running step)."""
    if wide:
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))
    z = ((z ^ (z >> np.uint64(16))) * np.uint64(0x7FEB352D)) & _M32
    z = ((z ^ (z >> np.uint64(15))) * np.uint64(0x846CA68B)) & _M32
    return z ^ (z >> np.uint64(16))


@numba.njit(nogil=True, cache=True)
def _permute(x, g, n, low, low_mask, high_mask, keys, wide):
    """The image of x in [0, n[g]) under domain g's permutation (see Shuffle): uint64 x, the
    domains' constants uint64 [G] each, keys uint64 [ROUNDS, G]."""
    y = np.uint64(x)
    while True:
        hi, lo = y >> low[g], y & low_mask[g]
        for r in range(keys.shape[0]):
            if r % 2:
                lo = lo ^ (_mix(hi ^ keys[r, g], wide) & low_mask[g])
            else:
                hi = hi ^ (_mix(lo ^ keys[r, g], wide) & high_mask[g])
        y = (hi << low[g]) | lo
        if y < n[g]:
            return np.int64(y)


@numba.njit(nogil=True, cache=True)
def _permute_many(domain, x, n, low, low_mask, high_mask, keys, wide):
    out = np.empty(x.shape[0], np.int64)
    for i in range(x.shape[0]):
        out[i] = _permute(x[i], domain[i], n, low, low_mask, high_mask, keys, wide)
    return out


class Shuffle:
    """One pseudorandom permutation of [0, n_g) per domain g, evaluated at any positions without
    being built: a 4-round Feistel network on the 2^b values of b = ceil(log2 n_g) bits (split in
    a high and a low part; each round xors one part with a hash of the other and a round key),
    its outputs outside [0, n_g) walked through it again until they fall inside (cycle walking:
    fewer than 2 passes on average). Each domain has its own round keys, drawn from `rng`. The
    arithmetic is compiled (numba): `_permute`, also called by the block filler."""

    ROUNDS = 4

    def __init__(self, sizes: np.ndarray, rng: np.random.Generator) -> None:
        sizes = np.asarray(sizes, np.int64)
        self.wide = bool(sizes.size and int(sizes.max()) > 2**32)  # 64-bit halves and hash
        t = np.uint64 if self.wide else np.uint32
        bits = np.maximum(np.ceil(np.log2(np.maximum(sizes, 1).astype(np.float64))), 2).astype(np.int64)
        u = np.uint64
        self.n = sizes.astype(u)  # [G]
        self.low = (bits // 2).astype(u)  # [G] bits of the low part (the high part: the rest)
        self.low_mask = (u(1) << self.low) - u(1)
        self.high_mask = (u(1) << (bits - bits // 2).astype(u)) - u(1)
        self.keys = rng.integers(0, np.iinfo(t).max, (self.ROUNDS, sizes.size), dtype=t,
                                 endpoint=True).astype(u)  # [ROUNDS, G]

    def constants(self) -> tuple:
        """(n, low, low_mask, high_mask, keys, wide): `_permute`'s arguments after x and g."""
        return self.n, self.low, self.low_mask, self.high_mask, self.keys, self.wide

    def __call__(self, domain: np.ndarray, x: np.ndarray) -> np.ndarray:
        """domain int [M] (which permutation), x int [M] in [0, n_domain) -> int64 [M]."""
        return _permute_many(np.asarray(domain, np.int64), np.asarray(x, np.int64),
                             *self.constants())


@numba.njit(nogil=True, cache=True)
def _fill(first, stop, p, num_chunks, chunk_at, first_chunk, sizes, starts, order,
          n, low, low_mask, high_mask, keys, wide,
          lhs, rhs, rel, weight, shift_l, shift_r, out_l, out_r, out_rel, out_w, at):
    """Chunk slots [first, stop) of a bucket (see Batches) into the flat outputs from index `at`
    (P entries per slot): lhs / rhs int32 (-1 for padding), rel int32 (0), weight float32 (0).
    Empty chunk_at / order / rel / weight / shift_l mean: identity, identity, all 0, all 1, none."""
    idx = np.empty(p, np.int64)  # a chunk's edges (-1: padding): computed first, then gathered
    for c in range(first, stop):  # in a second loop, whose loads do not wait on each other
        cid = c
        if c < num_chunks and chunk_at.size:
            cid = chunk_at[c]
        g = 0
        if sizes.size > 1 and c < num_chunks:
            g = np.searchsorted(first_chunk, cid, side="right") - 1
        q0 = (cid - first_chunk[g]) * p
        for j in range(p):
            q = q0 + j
            if c >= num_chunks or q >= sizes[g]:
                idx[j] = -1
            else:
                idx[j] = _permute(q, g, n, low, low_mask, high_mask, keys, wide) + starts[g]
        if order.size:
            for j in range(p):
                if idx[j] >= 0:
                    idx[j] = order[idx[j]]
        base = at + (c - first) * p
        for j in range(p):
            e, k = idx[j], base + j
            if e < 0:
                out_l[k], out_r[k], out_rel[k], out_w[k] = -1, -1, 0, 0.0
                continue
            r = rel[e] if rel.size else 0
            a, b = lhs[e], rhs[e]
            if shift_l.size:
                a, b = a + shift_l[r], b + shift_r[r]
            out_l[k], out_r[k], out_rel[k] = a, b, r
            out_w[k] = weight[e] if weight.size else 1.0


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
                 shape: tuple[int, int], block: int, workers: int = 1) -> None:
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
        self.workers = max(1, workers)  # threads that fill a block (`block_workers`)

    def _take(self, first: int, count: int) -> tuple[np.ndarray, ...]:
        """Chunk slots [first, first + count) as (lhs, rhs, rel, weight) [count // C, C, P], filled
        by `_fill` in `self.workers` threads (numba releases the GIL), each a range of slots."""
        p = self._shape[1]
        size = count * p
        out = (np.empty(size, np.int32), np.empty(size, np.int32), np.empty(size, np.int32),
               np.empty(size, np.float32))
        lhs, rhs, rel = self._edges
        none_i, none_f = np.empty(0, np.int64), np.empty(0, np.float32)
        shift = self._shift if self._shift is not None and rel.size else (none_i, none_i)
        args = (p, self._num_chunks, none_i if self._chunk_at is None else self._chunk_at,
                self._first_chunk, self._sizes, self._starts,
                none_i if self._order is None else self._order, *self._shuffle.constants(),
                lhs, rhs, rel, none_f if self._weight is None else self._weight, *shift, *out)
        parts = min(self.workers, max(1, size // 65536))
        cuts = [first + count * k // parts for k in range(parts + 1)]
        if parts == 1:
            _fill(first, first + count, *args, 0)
        else:
            done = [_pool(parts).submit(_fill, a, b, *args, (a - first) * p)
                    for a, b in zip(cuts[:-1], cuts[1:], strict=True)]
            for f in done:
                f.result()
        return tuple(a.reshape(-1, *self._shape) for a in out)

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
    workers: int = 1,  # threads that fill a block
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
                   (chunks_per_batch, chunk), block, workers)


_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOLS_LOCK = threading.Lock()


def _pool(n: int) -> ThreadPoolExecutor:
    """A process-wide pool of n block-filling threads."""
    with _POOLS_LOCK:
        if n not in _POOLS:
            _POOLS[n] = ThreadPoolExecutor(n, thread_name_prefix="jgraph-fill")
        return _POOLS[n]


def block_workers(backend: str, cores: int) -> int:
    """Threads that fill a training block: one on the CPU backend (the step's XLA threads need
    every core; one thread fills blocks far faster than a CPU trains them), up to 8 beside an
    accelerator, which trains tens of millions of edges a second."""
    return 1 if backend == "cpu" else max(1, min(8, cores - 1))
