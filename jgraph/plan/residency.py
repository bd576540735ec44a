"""Which partition sits in which working-table slot, bucket after bucket (pure planning).

A partitioned type has two slots. For the next bucket, a needed partition already resident stays
where it is (no IO); a missing one replaces a partition the bucket does not need. Planning the whole
bucket order ahead lets the next bucket's partitions and edge batches be prepared while the
current bucket trains.
"""

from __future__ import annotations

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


def plan(layout: PartitionLayout, order: list[Bucket], resident: dict[tuple[int, int], int]
         ) -> tuple[list[Swap], dict[tuple[int, int], int]]:
    """Plan the swaps of a bucket order.

    resident: (type, slot) -> partition held now (updated copy returned with the steps).
    """
    resident = dict(resident)
    steps = []
    for bucket in order:
        step = Swap(bucket, {})
        for t, tp in enumerate(layout.types):
            needed = list(dict.fromkeys(layout.bucket_parts(t, bucket)))  # ordered, unique
            for part in needed:
                if any(resident.get((t, s)) == part for s in range(tp.slots)):
                    continue
                free = [s for s in range(tp.slots) if resident.get((t, s)) is None]
                spare = [s for s in range(tp.slots) if resident.get((t, s)) not in needed]
                slot = (free or spare)[0]
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
