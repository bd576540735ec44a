"""Negatives (PBG semantics, pbg-reference §3.2).

A batch is C chunks of P positives. On each side a positive's negatives are
  * batch negatives: the other positives of its chunk on that side (itself and padding masked);
  * uniform negatives: U rows drawn per chunk, with replacement, from the partition of that side's
    entity type in the current bucket (shared by the chunk's positives);
  * or, with `all_negs`, every row of that partition.
With `uniform_from=bucket` "that partition" becomes both of the bucket's partitions of the side's
entity type (its lhs-side and rhs-side partitions, which are resident anyway).
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp

from jgraph.core.hashrng import below, bits

Array = Any


def uniform_rows(seed: Array, lo: Array, n: Array, num: int) -> Array:
    """Rows drawn uniformly with replacement from [lo_c, lo_c + n_c) for each chunk c.

    seed uint32 [] (hashrng); lo, n int [C] -> int32 [C, num] (lo_c when n_c = 0).
    """
    return lo[:, None] + below(bits(seed, (lo.shape[0], num)), n[:, None])


def uniform_rows_of_two(seed: Array, lo_a: Array, n_a: Array, lo_b: Array, n_b: Array, num: int
                        ) -> Array:
    """Rows drawn uniformly with replacement from the union of [lo_a, lo_a + n_a) and
    [lo_b, lo_b + n_b) for each chunk (the same range twice when a == b). int [C] -> int32 [C, num]."""
    k = below(bits(seed, (lo_a.shape[0], num)), (n_a + n_b)[:, None])
    return jnp.where(k < n_a[:, None], lo_a[:, None] + k, lo_b[:, None] + k - n_a[:, None])


def region_mask(lo: Array, n: Array, num_rows: int) -> Array:
    """all_negs: which rows of the working table belong to each chunk's partition.

    lo, n int [C] -> bool [C, 1, num_rows] (broadcasts over the chunk's positives).
    """
    rows = jnp.arange(num_rows, dtype=jnp.int32)
    return ((rows >= lo[:, None]) & (rows < (lo + n)[:, None]))[:, None, :]


def not_self_mask(ids: Array, num_rows: int) -> Array:
    """all_negs: a positive's own row is not its negative. ids int [C, P] -> bool [C, P, num_rows]."""
    return ids[..., None] != jnp.arange(num_rows, dtype=jnp.int32)
