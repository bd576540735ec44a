"""Negatives (PBG semantics, pbg-reference §3.2).

A batch is C chunks of P positives. On each side a positive's negatives are
  * batch negatives: the other positives of its chunk on that side (itself and padding masked);
  * uniform negatives: U rows drawn per chunk, with replacement, from the partition of that side's
    entity type in the current bucket (shared by the chunk's positives);
  * or, with `all_negs`, every row of that partition.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

Array = Any


def uniform_rows(key: Array, lo: Array, n: Array, num: int) -> Array:
    """Rows drawn uniformly with replacement from [lo_c, lo_c + n_c) for each chunk c.

    lo, n int [C] -> int32 [C, num].
    """
    u = jax.random.uniform(key, (lo.shape[0], num))
    offs = jnp.minimum((u * n[:, None]).astype(jnp.int32), jnp.maximum(n[:, None] - 1, 0))
    return lo[:, None] + offs


def cross_partition_rows(key: Array, lo: Array, n: Array, part: Array, cache_lo: Array, count: Array,
                         nparts: Array, num: int, cache_rows: int) -> Array:
    """Uniform negatives over every partition of the type, for each chunk c.

    A draw is a row of the resident partition [lo_c, lo_c + n_c) with probability n_c / count_c
    (its share of the type), else a row of the cached sample of another partition (segment p' of
    `cache_rows` rows at cache_lo_c). All inputs int [C]; -> int32 [C, num]."""
    k1, k2, k3 = jax.random.split(key, 3)
    c = lo.shape[0]
    here = uniform_rows(k1, lo, n, num)
    other = (part[:, None] + 1 + (jax.random.uniform(k2, (c, num)) * jnp.maximum(nparts - 1, 1)[:, None])
             .astype(jnp.int32)) % jnp.maximum(nparts, 1)[:, None]
    cached = (cache_lo[:, None] + other * cache_rows
              + (jax.random.uniform(k3, (c, num)) * cache_rows).astype(jnp.int32).clip(0, cache_rows - 1))
    share = n.astype(jnp.float32) / jnp.maximum(count, 1).astype(jnp.float32)
    coin = jax.random.uniform(jax.random.fold_in(key, 7), (c, num))
    use_here = (coin < share[:, None]) | (cache_lo[:, None] < 0)
    return jnp.where(use_here, here, cached)


def region_mask(lo: Array, n: Array, num_rows: int) -> Array:
    """all_negs: which rows of the working table belong to each chunk's partition.

    lo, n int [C] -> bool [C, 1, num_rows] (broadcasts over the chunk's positives).
    """
    rows = jnp.arange(num_rows, dtype=jnp.int32)
    return ((rows >= lo[:, None]) & (rows < (lo + n)[:, None]))[:, None, :]


def not_self_mask(ids: Array, num_rows: int) -> Array:
    """all_negs: a positive's own row is not its negative. ids int [C, P] -> bool [C, P, num_rows]."""
    return ids[..., None] != jnp.arange(num_rows, dtype=jnp.int32)
