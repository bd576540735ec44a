"""Chunking a bucket's edges into fixed-shape batches (host side, numpy, once per bucket pass).

Edges are shuffled, then grouped so that every chunk holds one group only: one relation in
standard mode (the rhs operator is shared by a chunk's negatives, PBG semantics), one
(lhs type, rhs type) pair with reciprocal relations (negatives must have the right type).
A group's last chunk is padded (-1), chunks are shuffled and packed C to a batch; the batch count is
padded to a multiple of the block length S so every dispatch has one shape.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class Batches(NamedTuple):
    """Batches of one bucket: arrays [num_blocks * S, C, P] and how many batches are real."""

    lhs: np.ndarray  # int32, -1 = padding
    rhs: np.ndarray  # int32
    rel: np.ndarray  # int32
    weight: np.ndarray  # float32
    num_batches: int

    def block(self, i: int, s: int) -> tuple[tuple[np.ndarray, ...], int]:
        """Block i: (lhs, rhs, rel, weight) arrays [S, C, P] and its number of real batches."""
        sl = slice(i * s, (i + 1) * s)
        n = max(0, min(s, self.num_batches - i * s))
        return (self.lhs[sl], self.rhs[sl], self.rel[sl], self.weight[sl]), n

    def num_blocks(self, s: int) -> int:
        return -(-self.num_batches // s)


def chunk_slots(group: np.ndarray | None, num_edges: int, chunk: int, rng: np.random.Generator
                ) -> tuple[np.ndarray, np.ndarray, int]:
    """Where each edge goes: (edge order [E], slot [E] = chunk index * P + position, #chunks).

    group int [E] or None: edges of different groups never share a chunk.
    """
    perm = rng.permutation(num_edges)
    if group is None or num_edges == 0 or np.all(group == group[0]):
        return perm, np.arange(num_edges, dtype=np.int64), -(-num_edges // chunk)
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
    shape = (padded_batches, chunks_per_batch, chunk)

    def place(values: np.ndarray, fill, dtype) -> np.ndarray:
        out = np.full(size, fill, dtype)
        out[slot] = values[perm]
        return out.reshape(shape)

    w = np.ones(e, np.float32) if weight is None else weight
    return Batches(
        lhs=place(lhs, -1, np.int32),
        rhs=place(rhs, -1, np.int32),
        rel=place(rel, 0, np.int32),
        weight=place(w, 0.0, np.float32),
        num_batches=num_batches,
    )
