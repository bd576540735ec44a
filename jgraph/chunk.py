"""Chunking a bucket's edges into fixed-shape batches (host side, numpy, once per bucket pass).

Edges are shuffled, then grouped so that every chunk holds one group only: one relation in
standard mode (the rhs operator is shared by a chunk's negatives, PBG semantics), one
(lhs type, rhs type) pair with reciprocal relations (negatives must have the right type).
A group's last chunk is padded (-1), chunks are shuffled and packed C to a batch; the batch count is
padded to a multiple of the block length S so every dispatch has one shape.
"""

from __future__ import annotations

import numpy as np


class Batches:
    """Batches of one bucket: C chunks of P edges each, num_blocks * S of them, built one block at
    a time ([S, C, P] arrays on demand) from where each edge goes.

    Building a block is four gathers of its S * C * P slots, done while the previous block trains;
    building the whole bucket up front made its first step wait (20M edges: 2 s of placing)."""

    def __init__(self, edges: tuple[np.ndarray, ...], weight: np.ndarray | None,
                 edge_of: np.ndarray, num_batches: int, shape: tuple[int, int]) -> None:
        self._edges = edges  # (lhs, rhs, rel) int [E]
        self._weight = weight  # float [E], or None for all ones
        self._edge_of = edge_of  # int [num_blocks * S * C * P]: the edge in each slot, -1 = padding
        self.num_batches = num_batches  # real batches (the rest are padding)
        self._shape = shape  # (C, P)

    def _take(self, sl: slice) -> tuple[np.ndarray, ...]:
        idx = self._edge_of[sl]
        valid = idx >= 0
        safe = np.where(valid, idx, 0)
        shape = (-1, *self._shape)
        out = []
        for a, fill in zip(self._edges, (-1, -1, 0), strict=True):
            got = a[safe] if a.size else np.zeros(idx.shape, np.int32)
            out.append(np.where(valid, got, fill).astype(np.int32, copy=False).reshape(shape))
        w = (np.ones(idx.shape, np.float32) if self._weight is None or not self._weight.size
             else self._weight[safe])
        out.append(np.where(valid, w, 0.0).astype(np.float32, copy=False).reshape(shape))
        return tuple(out)

    def block(self, i: int, s: int) -> tuple[tuple[np.ndarray, ...], int]:
        """Block i: (lhs, rhs, rel, weight) arrays [S, C, P] and its number of real batches.

        lhs and rhs are int32 with -1 for padding, rel int32 (0 for padding), weight float32 (0 for
        padding)."""
        per = s * self._shape[0] * self._shape[1]
        n = max(0, min(s, self.num_batches - i * s))
        return self._take(slice(i * per, (i + 1) * per)), n

    def num_blocks(self, s: int) -> int:
        return -(-self.num_batches // s)

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Every batch at once: (lhs, rhs, rel, weight) [num_blocks * S, C, P] (for tests and small
        buckets)."""
        return self._take(slice(None))


def chunk_slots(group: np.ndarray | None, num_edges: int, chunk: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Where each edge goes: (edge order [E], slot [E] = chunk index * P + position, #chunks).

    group int [E] or None: edges of different groups never share a chunk. With one group, slot
    is None: the shuffled edges fill the slots in order.
    """
    perm = rng.permutation(num_edges)
    if group is None or num_edges == 0 or np.all(group == group[0]):
        return perm, None, -(-num_edges // chunk)
    g = group[perm]
    order = np.argsort(g, kind="stable")
    perm, g = perm[order], g[order]
    starts = np.flatnonzero(np.r_[True, g[1:] != g[:-1]])
    counts = np.diff(np.r_[starts, num_edges])
    per_group = -(-counts // chunk)
    first_chunk = np.r_[0, np.cumsum(per_group)[:-1]]
    gi = np.repeat(np.arange(starts.size), counts)
    pos = np.arange(num_edges) - starts[gi]
    num_chunks = int(per_group.sum())
    # shuffle the chunks so a batch mixes groups
    new_pos = np.empty(num_chunks, np.int64)
    new_pos[rng.permutation(num_chunks)] = np.arange(num_chunks)
    slot = new_pos[first_chunk[gi] + pos // chunk] * chunk + pos % chunk
    return perm, slot, num_chunks


def make_batches(
    lhs: np.ndarray,  # int [E] working-table rows
    rhs: np.ndarray,  # int [E]
    rel: np.ndarray,  # int [E]
    weight: np.ndarray | None,  # float [E]
    group: np.ndarray | None,  # int [E]
    chunk: int,  # P
    chunks_per_batch: int,  # C
    block: int,  # S
    rng: np.random.Generator,
) -> Batches:
    e = int(lhs.shape[0])
    perm, slot, num_chunks = chunk_slots(group, e, chunk, rng)
    num_batches = -(-num_chunks // chunks_per_batch)
    padded_batches = max(1, -(-num_batches // block)) * block
    size = padded_batches * chunks_per_batch * chunk
    dtype = np.int32 if e < 2**31 else np.int64
    edge_of = np.full(size, -1, dtype)
    if slot is None:
        edge_of[:e] = perm
    else:
        edge_of[slot] = perm
    return Batches((lhs, rhs, rel), weight, edge_of, num_batches, (chunks_per_batch, chunk))
