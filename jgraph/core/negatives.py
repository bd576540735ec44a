"""Negatives (PBG semantics, pbg-reference §3.2).

A batch is C chunks of P positives. On each side a positive's negatives are
  * batch negatives: the other positives of its chunk on that side (itself and padding masked);
  * uniform negatives: U rows drawn per chunk, with replacement, from the partition of that side's
    entity type in the current bucket (shared by the chunk's positives);
  * or, with `all_negs`, every row of that partition.
With `uniform_from=bucket` "that partition" becomes both of the bucket's partitions of the side's
entity type (its lhs-side and rhs-side partitions, which are resident anyway).
With `degree_fraction` f, round(f U) of the U uniform rows are drawn from the side's partition in
proportion to the entities' training degrees instead (Marius' degree_fraction, DGL-KE's
neg_deg_sample), from a cumulative table over the working table (`degree_table`, `degree_rows`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.core.hashrng import below, bits, hash32
from jgraph.plan.partition import PartitionLayout

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


# ------------------------------------------------------------------ degree-based negatives
def entity_degrees(lhs: np.ndarray, rhs: np.ndarray, rel: np.ndarray, relation_types: np.ndarray,
                   counts: list[int]) -> list[np.ndarray]:
    """Training degree (edges as head + edges as tail) of every entity, per entity type.

    lhs, rhs, rel int [E] (entity ids within their type), relation_types int [R, 2], counts [T]
    -> T arrays int64 [count_t]."""
    rt = np.asarray(relation_types).reshape(-1, 2)
    out = [np.zeros(n, np.int64) for n in counts]
    for side, ids in ((0, lhs), (1, rhs)):
        types = rt[np.asarray(rel), side]
        for t, n in enumerate(counts):
            sel = types == t
            if sel.any():
                out[t] += np.bincount(np.asarray(ids)[sel], minlength=n)[:n]
    return out


def degree_table(layout: PartitionLayout, bucket: tuple[int, int],
                 slot_of: dict[tuple[int, int], int], degrees: list[np.ndarray]) -> np.ndarray:
    """The working table's cumulative degrees for a bucket: int32 [K + 1], over the rows of each
    partition the bucket trains (in the slot that holds it), the inclusive running sum of their
    entities' degrees, restarting at each slot's first row (so row lo + n - 1 of a region holds
    the region's total); 0 elsewhere. degrees: `entity_degrees`, per type in entity id order."""
    cum = np.zeros(layout.num_rows + 1, np.int64)
    for t, tp in enumerate(layout.types):
        if not tp.count:
            continue
        for part in set(layout.bucket_parts(t, bucket)):
            start = layout.slot_start[t][slot_of.get((t, part), 0)]
            run = np.cumsum(degrees[t][tp.members[part]])
            cum[start : start + run.size] = run
    if cum.max(initial=0) >= 2**31:
        raise ValueError("negatives.degree_fraction: a partition's total degree reaches 2^31; "
                         "use more partitions")
    return cum.astype(np.int32)


def degree_rows(seed: Array, lo: Array, n: Array, cum: Array, num: int) -> Array:
    """Rows drawn with replacement from [lo_c, lo_c + n_c) with probability proportional to their
    degree, for each chunk c: a counter-based uniform target in [0, total_c) (hashrng), then the
    first row whose cumulative degree exceeds it (a binary search in the region, as searchsorted).

    seed uint32 []; lo, n int [C]; cum int32 [K + 1] (`degree_table`) -> int32 [C, num]. A region
    whose total degree is 0 is drawn uniformly instead."""
    c = lo.shape[0]
    last = lo + jnp.maximum(n, 1) - 1
    total = jnp.where(n > 0, cum[last], 0)  # [C]
    target = below(bits(seed, (c, num)), total[:, None])  # [C, num] in [0, total)
    a = jnp.broadcast_to(lo[:, None], (c, num))
    b = jnp.broadcast_to(last[:, None], (c, num))

    def halve(_, ab):
        a, b = ab
        mid = (a + b) // 2
        right = cum[mid] <= target  # the answer lies after mid
        return jnp.where(right, mid + 1, a), jnp.where(right, b, mid)

    steps = max(1, int(np.ceil(np.log2(cum.shape[0] + 1))))
    a, _ = jax.lax.fori_loop(0, steps, halve, (a, b))
    uniform = uniform_rows(hash32(seed ^ jnp.uint32(0x5BD1E995)), lo, n, num)
    return jnp.where((total > 0)[:, None], a, uniform)


def log_expected_counts(ids: Array, lo: Array, n: Array, cum: Array, num_batch: Array,
                        num_uniform: int, num_degree: int, other: tuple[Array, Array] | None = None
                        ) -> Array:
    """The log-Q correction (negatives.logq_correction; Yi et al. 2019, "Sampling-bias-corrected
    neural modeling for large corpus item recommendations"): the log of each candidate row's
    expected number of occurrences among a positive's sampled negatives,
      log( (num_batch + num_degree) deg(r) / total + (num_uniform - num_degree) / n ),
    batch negatives (the chunk's other positives) being drawn in proportion to degree, as the
    degree-based draws are (`degree_rows`), and the uniform draws 1/n. A softmax whose sampled
    negatives' logits are lowered by it estimates the full softmax over the partition,
    sum_r exp(s_r) ~ sum_j exp(s_j - log count_j); the positive, always present, is not corrected
    ("Correcting the LogQ Correction: Revisiting Sampled Softmax for Large-Scale Retrieval").

    ids int [C, N]: each chunk's candidate rows; lo, n int [C]: the side's partition region;
    cum int32 [K + 1] (`degree_table`; a region of total degree 0 counts as uniform);
    num_batch [C]: batch negatives per positive (the chunk's valid positives - 1; 0 without);
    num_uniform: rows drawn per chunk, num_degree of them by degree; other: (lo_b, n_b) [C], the
    second region of the uniform draws (negatives.uniform_from=bucket). -> float32 [C, N].
    With several partitions a bucket's batch negatives follow each entity's degree within the
    bucket; its whole training degree stands in for it (proportional in expectation when the
    partitions are random)."""
    lo_, n_ = lo[:, None], n[:, None]
    in_a = (ids >= lo_) & (ids < lo_ + n_)
    safe = jnp.clip(ids, 0, cum.shape[0] - 1)
    prev = jnp.where(ids > lo_, cum[jnp.maximum(safe - 1, 0)], 0)
    deg = jnp.where(in_a, cum[safe] - prev, 0).astype(jnp.float32)
    total = jnp.where(n > 0, cum[lo + jnp.maximum(n, 1) - 1], 0).astype(jnp.float32)[:, None]
    q = jnp.where(total > 0, deg / jnp.maximum(total, 1.0),
                  in_a / jnp.maximum(n_, 1).astype(jnp.float32))
    nu = num_uniform - num_degree
    if other is None:
        uni = nu * in_a / jnp.maximum(n_, 1).astype(jnp.float32)
    else:
        lo_b, n_b = other[0][:, None], other[1][:, None]
        in_b = (ids >= lo_b) & (ids < lo_b + n_b)
        uni = nu * (in_a.astype(jnp.float32) + in_b) / jnp.maximum(n_ + n_b, 1).astype(jnp.float32)
    count = (num_batch[:, None] + num_degree) * q + uni
    return jnp.log(jnp.maximum(count, 1e-12))
