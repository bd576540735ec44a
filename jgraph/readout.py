"""Every entity's row in id order, assembled from partitions: the one read-out of training
(`Trainer.full_tables`) and of trained runs (`trained.load_run`).

Shapes: N rows (every entity, types concatenated in type order), D dimension, T entity types,
P partitions of a type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.numpy as jnp
import numpy as np

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
