"""Partitions: which entity lives in which partition, and where partitions sit in the working table.

An entity type with P partitions has its entities assigned evenly and at random (seeded, so the
mapping is reproducible and kept): the ids are shuffled and partition p takes the shuffled range
[ceil(p n / P), ceil((p + 1) n / P)) (PBG's rule); an entity's row in its partition is its position
in that range. Every partition of a type is padded to one capacity M, so swapping partitions never
changes an array shape.

The working table holds the resident partitions: an unpartitioned type (P = 1) has one slot, always
resident; a partitioned type has B = storage.buffer_partitions slots (at least two, for the lhs and
the rhs partition of the current bucket; at most P), the partition buffer. K = the sum of slot sizes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np

from jgraph.errors import OptionError


class Layout(NamedTuple):
    """Where each entity type's partitions sit in the working table for the current bucket."""

    lo: Any  # int32 [T, 2] first row of (type, side) — side 0 = lhs partition, 1 = rhs partition
    n: Any  # int32 [T, 2] rows of that partition (entity count)
    deg: Any = None  # int32 [K + 1] cumulative degrees of the bucket's partitions' rows, for
    #                  negatives.degree_fraction (jgraph.core.negatives.degree_table); None: off
    feat: Any = None  # featurized types: tuple of core.features.FeatureRows, one per
    #                   ModelSpec.featurized entry; None: none


@dataclass
class TypePartitions:
    """The partitioning of one entity type."""

    name: str
    count: int  # entities of this type
    num_partitions: int  # P
    seed: int
    buffer: int = 2  # B: working-table slots when partitioned (PartitionLayout sets it)
    part_of: np.ndarray = field(init=False, repr=False)  # int32 [count]
    offset_of: np.ndarray = field(init=False, repr=False)  # int64 [count] row inside its partition
    members: list[np.ndarray] = field(init=False, repr=False)  # per partition: entity ids by row
    sizes: np.ndarray = field(init=False)  # int64 [P]

    def __post_init__(self) -> None:
        n, p = self.count, self.num_partitions
        if p > max(n, 1):  # empty partitions: and the bucket count (p^2) would only slow all down
            raise OptionError(f"entities.{self.name}.num_partitions={p} is more than its {n} entities")
        if p == 1:
            order = np.arange(n, dtype=np.int64)
        else:
            order = np.random.default_rng([self.seed, n, p]).permutation(n).astype(np.int64)
        bounds = np.array([-(-i * n // p) for i in range(p + 1)], np.int64)
        self.sizes = np.diff(bounds)
        self.members = [order[bounds[i] : bounds[i + 1]] for i in range(p)]
        self.part_of = np.empty(n, np.int32)
        self.offset_of = np.empty(n, np.int64)
        for i, m in enumerate(self.members):
            self.part_of[m] = i
            self.offset_of[m] = np.arange(m.size)

    @property
    def capacity(self) -> int:
        """M: rows per partition table (the largest partition; at least 1)."""
        return max(int(self.sizes.max()), 1) if self.count else 1

    @property
    def slots(self) -> int:
        return 1 if self.num_partitions == 1 else min(max(self.buffer, 2), self.num_partitions)


class PartitionLayout:
    """All entity types' partitions and the working-table slots that hold them."""

    def __init__(self, types: list[TypePartitions], buffer: int | None = None) -> None:
        """buffer: the slots of each partitioned type (None: as the types have them, 2 by default)."""
        self.types = types
        for t in types if buffer is not None else ():
            t.buffer = buffer
        self.index = {t.name: i for i, t in enumerate(types)}
        starts, k = [], 0
        for t in types:
            starts.append([k + s * t.capacity for s in range(t.slots)])
            k += t.slots * t.capacity
        self.slot_start = starts  # [T][slots] first working-table row of each slot
        self.num_rows = k  # K
        partitioned = [t.num_partitions for t in types if t.num_partitions > 1]
        if len(set(partitioned)) > 1:
            raise ValueError(
                "all partitioned entity types must share one partition count, got "
                + ", ".join(f"{t.name}={t.num_partitions}" for t in types if t.num_partitions > 1)
            )
        self.num_partitions = partitioned[0] if partitioned else 1

    @staticmethod
    def build(counts: dict[str, int], partitions: dict[str, int], seed: int,
              buffer: int = 2) -> PartitionLayout:
        return PartitionLayout(
            [TypePartitions(name, counts[name], partitions[name], seed) for name in counts], buffer
        )

    def bucket_parts(self, t: int, bucket: tuple[int, int]) -> tuple[int, int]:
        """The (lhs, rhs) partitions of type t that bucket (i, j) trains (0 when unpartitioned)."""
        if self.types[t].num_partitions == 1:
            return 0, 0
        return bucket

    def layout(self, bucket: tuple[int, int], slot_of: dict[tuple[int, int], int]) -> Layout:
        """The model's Layout for a bucket, given which slot holds each resident (type, partition)."""
        lo = np.zeros((len(self.types), 2), np.int32)
        n = np.zeros((len(self.types), 2), np.int32)
        for t, tp in enumerate(self.types):
            for side, part in enumerate(self.bucket_parts(t, bucket)):
                slot = slot_of.get((t, part), 0)
                lo[t, side] = self.slot_start[t][slot]
                n[t, side] = tp.sizes[part] if tp.count else 0
        return Layout(lo, n)

    def rows(self, t: int, part: int, slot: int, offsets: np.ndarray) -> np.ndarray:
        """Working-table rows of partition-local offsets of (type t, partition) held in `slot`."""
        return (self.slot_start[t][slot] + offsets).astype(np.int32)


def partition_shifts(means: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Read-out centering (`model.center_partitions`): what to add to each partition's rows so its
    mean row becomes its type's mean. means float [P, D] (each partition's mean row), sizes int [P]
    -> float32 [P, D].

    PBG's softmax draws a positive's negatives from its own partition, so training never compares
    one partition's scores with another's and the partitions' mean rows drift apart; full ranking
    compares every entity. Moving the means together after training recovers part of the
    difference (FB15k-237 with 4 partitions: README)."""
    sizes = np.asarray(sizes, np.float64)
    means = np.where(sizes[:, None] > 0, np.asarray(means, np.float64), 0.0)
    type_mean = (sizes[:, None] * means).sum(0) / max(sizes.sum(), 1.0)
    return (type_mean[None, :] - means).astype(np.float32)


def centering_shifts(rows: np.ndarray, members: list[np.ndarray]) -> np.ndarray:
    """`partition_shifts` of a type's rows in id order (rows float [count, D], members[p] the ids
    of partition p) -> float32 [P, D]."""
    means = np.stack([rows[m].mean(0) if m.size else np.zeros(rows.shape[1]) for m in members])
    return partition_shifts(means, np.array([m.size for m in members]))


def center_rows(rows: np.ndarray, members: list[np.ndarray], shifts: np.ndarray | None = None) -> None:
    """In place: shifts[p] added to partition p's rows of a type's rows in id order; shifts None:
    `centering_shifts` of the rows themselves (the calibrated shifts, jgraph/train/calibrate.py,
    otherwise)."""
    if shifts is None:
        shifts = centering_shifts(rows, members)
    for m, shift in zip(members, shifts, strict=True):
        rows[m] += shift


def shifts_from_arrays(layout: PartitionLayout, arrays: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """The calibrated read-out shifts saved with a checkpoint's parameters: type index -> [P, D]."""
    return {t: arrays[f"shift:{tp.name}"] for t, tp in enumerate(layout.types)
            if f"shift:{tp.name}" in arrays}


def shifts_to_arrays(layout: PartitionLayout, shifts: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """The inverse of `shifts_from_arrays`: what the parameters file stores."""
    return {f"shift:{layout.types[t].name}": s for t, s in shifts.items()}
