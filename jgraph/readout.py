"""Every entity's row in id order, assembled from partitions: the one read-out of training
(`Trainer.full_tables`) and of trained runs (`trained.load_run`).

Shapes: N rows (every entity, types concatenated in type order), D dimension, T entity types,
P partitions of a type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.config import TrainConfig
from jgraph.plan.partition import PartitionLayout, center_rows


def assemble(layout: PartitionLayout, dimension: int, rows_of: Callable[[int, int], Any],
             center: bool, shifts: dict[int, np.ndarray] | None = None) -> tuple[Any, np.ndarray]:
    """(emb float32 [N, D], offsets int64 [T]: the first row of each type in emb).

    rows_of(t, p) -> the rows of partition p of type t, [sizes[p], D], in partition order
    (members[p] are their ids); a type of one partition is used as returned (a device array stays
    uncopied). center: partitioned types shifted per partition by `shifts` (type index -> [P, D];
    a type without: each partition's mean row moved to its type's mean, plan.partition.center_rows).
    """
    parts, offsets, off = [], [], 0
    for t, tp in enumerate(layout.types):
        offsets.append(off)
        off += tp.count
        if tp.num_partitions == 1:
            parts.append(jnp.asarray(rows_of(t, 0), jnp.float32))  # members[0]: ids in order
            continue
        full = np.zeros((tp.count, dimension), np.float32)
        for p in range(tp.num_partitions):
            full[tp.members[p]] = rows_of(t, p)
        if center:
            center_rows(full, tp.members, (shifts or {}).get(t))
        parts.append(jnp.asarray(full))
    return jnp.concatenate(parts) if len(parts) > 1 else parts[0], np.array(offsets, np.int64)


# ---------------------------------------------------------------- rows never written
def init_key(seed: int, t: int, part: int) -> jax.Array:
    """The PRNG key of partition `part` of type `t`'s first-touch rows."""
    return jax.random.key(hash((seed, t, part)) % (2**31))


def init_block_rows(dimension: int) -> int:
    """First-touch rows are drawn this many at a time, 2 MiB of them (the draws stay in cache:
    1.7x faster than 8 MiB, 7x faster than a 1.6 GB slot at once); block a's rows use the key
    folded with a's first row."""
    return max(1, (1 << 19) // dimension)


def initial_rows(cfg: TrainConfig, t: int, part: int, capacity: int) -> np.ndarray:
    """A partition's first-touch rows on the host, float32 [capacity, D]: the rows `WorkingTable`
    puts into a slot for a partition never written (N(0, init_scale^2), as PBG), drawn the same
    way; for read-outs and warm starts of partitions training has not touched."""
    d, scale = cfg.model.dimension, cfg.model.init_scale
    key = init_key(cfg.training.seed, t, part)
    step = init_block_rows(d)
    return np.concatenate([np.asarray(_draw(key, jnp.int32(a), scale, min(step, capacity - a), d))
                           for a in range(0, capacity, step)] or [np.zeros((0, d), np.float32)])


def _draw_rows(key: jax.Array, offset: jax.Array, scale: float, rows: int, d: int) -> jax.Array:
    # the computation of step.make_slot_ops' init, without the table
    return scale * jax.random.normal(jax.random.fold_in(key, offset), (rows, d), jnp.float32)


_draw = jax.jit(_draw_rows, static_argnums=(2, 3, 4))
