"""Residency planning (jgraph.plan.residency.plan) and the working-table layout it feeds.

The plan is replayed on a simulated working table: evictions must name what the slot holds, loads
must go to an empty slot and bring a partition not already resident, and after every step each
partition the bucket needs is resident, a type never holds more than its slots (2 for a
partitioned type, 1 for an unpartitioned one), nothing is loaded that was already there, nothing
needed is evicted, and `slot_of` / `PartitionLayout.layout` point at the slots really holding the
bucket's partitions.
"""

from __future__ import annotations

import numpy as np
import pytest

from jgraph.plan.buckets import ORDERS, bucket_order
from jgraph.plan.partition import PartitionLayout, TypePartitions
from jgraph.plan.residency import plan


def _layout(p: int) -> PartitionLayout:
    # two partitioned types sharing P, one unpartitioned type
    return PartitionLayout.build({"a": 23, "b": 7, "c": 11}, {"a": p, "b": 1, "c": p}, seed=0)


def _replay(layout: PartitionLayout, steps, resident):
    resident = dict(resident)
    for step in steps:
        before = dict(resident)
        for t, part, slot in step.evict:
            assert resident.get((t, slot)) == part, f"evicting {part} from {slot}, which holds {resident}"
            del resident[(t, slot)]
        for t, part, slot in step.load:
            assert (t, slot) not in resident, "loading into an occupied slot"
            assert part not in [q for (tt, _), q in resident.items() if tt == t], "partition loaded twice"
            assert 0 <= slot < layout.types[t].slots
            resident[(t, slot)] = part
        for t, tp in enumerate(layout.types):
            needed = set(layout.bucket_parts(t, step.bucket))
            held = [q for (tt, _), q in resident.items() if tt == t]
            held_before = {q for (tt, _), q in before.items() if tt == t}
            assert needed <= set(held), f"bucket {step.bucket} needs {needed} of type {t}, resident {held}"
            assert len(held) == len(set(held)) <= tp.slots <= 2
            loaded = {q for tt, q, _ in step.load if tt == t}
            assert loaded == needed - held_before  # exactly the missing ones, no needless IO
            assert not ({q for tt, q, _ in step.evict if tt == t} & needed)
        assert step.slot_of == {(t, q): s for (t, s), q in resident.items()}
        lay = layout.layout(step.bucket, step.slot_of)
        for t, tp in enumerate(layout.types):
            for side, part in enumerate(layout.bucket_parts(t, step.bucket)):
                assert lay.lo[t, side] == layout.slot_start[t][step.slot_of[(t, part)]]
                assert lay.n[t, side] == tp.sizes[part]
    return resident


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("p", [1, 2, 3, 5])
def test_plan_replays_consistently(order, p):
    layout = _layout(p)
    resident = {}
    for epoch in range(2):  # the second epoch starts from what the first left resident
        buckets = bucket_order(p, p, order, seed=1, epoch=epoch)
        steps, final = plan(layout, buckets, resident)
        assert [s.bucket for s in steps] == buckets
        assert _replay(layout, steps, resident) == final
        resident = final


def test_plan_keeps_a_shared_partition():
    """(0,1) -> (1,2): partition 1 stays where it is, only 2 is loaded (into 0's slot)."""
    layout = PartitionLayout([TypePartitions("a", 30, 3, seed=0)])
    steps, final = plan(layout, [(0, 1), (1, 2), (2, 2), (2, 0)], {})
    assert [(p, s) for _, p, s in steps[0].load] == [(0, 0), (1, 1)]
    assert steps[1].evict == [(0, 0, 0)] and steps[1].load == [(0, 2, 0)]
    assert steps[2].load == [] and steps[2].evict == []  # diagonal bucket: 2 already resident
    assert [p for _, p, _ in steps[3].load] == [0] and [p for _, p, _ in steps[3].evict] == [1]
    assert final == {(0, 0): 2, (0, 1): 0}


def test_partition_layout():
    """PBG's split: partition p = shuffled ids [ceil(p n / P), ceil((p + 1) n / P)); every slot has
    the capacity of the largest partition; unpartitioned types have one slot."""
    layout = _layout(3)
    a, b, c = layout.types
    np.testing.assert_array_equal(a.sizes, [8, 8, 7])  # ceil(0), ceil(23/3)=8, ceil(46/3)=16, 23
    assert a.capacity == 8 and (a.slots, b.slots, c.slots) == (2, 1, 2)
    assert layout.slot_start == [[0, 8], [16], [23, 27]]
    assert layout.num_rows == 2 * 8 + 7 + 2 * 4
    for t in layout.types:  # a bijection between ids and (partition, offset)
        ids = np.concatenate(t.members)
        np.testing.assert_array_equal(np.sort(ids), np.arange(t.count))
        for pidx, m in enumerate(t.members):
            np.testing.assert_array_equal(t.part_of[m], pidx)
            np.testing.assert_array_equal(t.offset_of[m], np.arange(m.size))
    with pytest.raises(ValueError, match="share one partition count"):
        PartitionLayout.build({"a": 10, "b": 10}, {"a": 2, "b": 3}, seed=0)
