"""Which partition sits in which working-table slot, bucket after bucket (pure planning).

A partitioned type has `TypePartitions.slots` slots (storage.buffer_partitions, at least 2). For
the next bucket, a needed partition already resident stays where it is (no IO); a missing one goes
into a free slot, else replaces a partition the bucket does not need: with two slots the first
such slot (the only choice but on diagonal buckets), with more the one whose partition is needed
furthest in the future (Belady's rule: the order is known ahead, so this evicts least). Planning
the bucket order ahead lets the next bucket's partitions and edge batches be prepared while the
current bucket trains.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from jgraph.plan.buckets import Bucket
from jgraph.plan.partition import PartitionLayout

Key = tuple[int, int]  # (type index, partition)


@dataclass
class Swap:
    """What entering one bucket takes."""

    bucket: Bucket
    slot_of: dict[Key, int]  # resident (type, partition) -> slot, after the swap
    evict: list[tuple[int, int, int]] = field(default_factory=list)  # (type, partition, slot)
    load: list[tuple[int, int, int]] = field(default_factory=list)  # (type, partition, slot)


def _furthest(layout: PartitionLayout, t: int, spare: list[int], resident: dict, upcoming,
              ) -> int:
    """The slot among `spare` whose partition the `upcoming` buckets need last (or never)."""
    left = {resident[(t, s)]: s for s in spare}
    for b in upcoming:
        for part in layout.bucket_parts(t, b):
            if len(left) > 1:
                left.pop(part, None)
        if len(left) == 1:
            break
    return min(left.values())


def plan(layout: PartitionLayout, order: list[Bucket], resident: dict[tuple[int, int], int],
         future: Sequence[Bucket] = ()) -> tuple[list[Swap], dict[tuple[int, int], int]]:
    """Plan the swaps of a bucket order.

    resident: (type, slot) -> partition held now (updated copy returned with the steps).
    future: the buckets that come after `order` (for the eviction choice with more than two slots).
    """
    resident = dict(resident)
    steps = []
    seq = list(order) + list(future)
    for i, bucket in enumerate(order):
        step = Swap(bucket, {})
        for t, tp in enumerate(layout.types):
            needed = list(dict.fromkeys(layout.bucket_parts(t, bucket)))  # ordered, unique
            for part in needed:
                if any(resident.get((t, s)) == part for s in range(tp.slots)):
                    continue
                free = [s for s in range(tp.slots) if resident.get((t, s)) is None]
                spare = [s for s in range(tp.slots) if resident.get((t, s)) not in needed]
                if free:
                    slot = free[0]
                elif tp.slots > 2 and len(spare) > 1:
                    slot = _furthest(layout, t, spare, resident, (seq[j] for j in range(i + 1, len(seq))))
                else:
                    slot = spare[0]
                old = resident.get((t, slot))
                if old is not None:
                    step.evict.append((t, old, slot))
                step.load.append((t, part, slot))
                resident[(t, slot)] = part
            for s in range(tp.slots):
                if resident.get((t, s)) is not None:
                    step.slot_of[(t, resident[(t, s)])] = s
        steps.append(step)
    return steps, resident


def count_loads(layout: PartitionLayout, order: list[Bucket],
                resident: dict[tuple[int, int], int] | None = None) -> int:
    """Partition loads (reads into a slot, each but the first few also a write-back) of `order`."""
    return sum(len(s.load) for s in plan(layout, order, resident or {})[0])
