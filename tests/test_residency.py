"""Residency planning (jgraph.plan.residency.plan) and the working-table layout it feeds.

The plan is replayed on a simulated working table: evictions must name what the slot holds, loads
must go to an empty slot and bring a partition not already resident, and after every step each
partition the bucket needs is resident, a type never holds more than its slots (B =
storage.buffer_partitions, at most P, for a partitioned type; 1 for an unpartitioned one),
nothing is loaded that was already there, nothing needed is evicted, and `slot_of` /
`PartitionLayout.layout` point at the slots really holding the bucket's partitions.
"""

from __future__ import annotations

import numpy as np
import pytest

from jgraph.plan.buckets import ORDERS, bucket_order
from jgraph.plan.partition import PartitionLayout, TypePartitions
from jgraph.plan.residency import count_loads, plan


def _layout(p: int, buffer: int = 2) -> PartitionLayout:
    # two partitioned types sharing P, one unpartitioned type
    return PartitionLayout.build({"a": 23, "b": 7, "c": 11}, {"a": p, "b": 1, "c": p}, seed=0,
                                 buffer=buffer)


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
            assert len(held) == len(set(held)) <= tp.slots
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
@pytest.mark.parametrize("p, buffer", [(1, 2), (2, 2), (3, 2), (5, 2), (5, 3), (6, 4), (3, 5)])
def test_plan_replays_consistently(order, p, buffer):
    layout = _layout(p, buffer)
    slots = min(buffer, p) if p > 1 else 1
    assert [t.slots for t in layout.types] == [slots, 1, slots]
    resident = {}
    for epoch in range(2):  # the second epoch starts from what the first left resident
        buckets = bucket_order(p, p, order, seed=1, epoch=epoch, buffer=buffer)
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


def _old_plan(layout, order, resident):
    """The planner before the partition buffer (two slots: the first slot the bucket does not
    need), as (bucket, evict, load) triples: B = 2 must plan exactly this."""
    resident, out = dict(resident), []
    for bucket in order:
        evict, load = [], []
        for t, tp in enumerate(layout.types):
            needed = list(dict.fromkeys(layout.bucket_parts(t, bucket)))
            for part in needed:
                if any(resident.get((t, s)) == part for s in range(tp.slots)):
                    continue
                free = [s for s in range(tp.slots) if resident.get((t, s)) is None]
                spare = [s for s in range(tp.slots) if resident.get((t, s)) not in needed]
                slot = (free or spare)[0]
                if resident.get((t, slot)) is not None:
                    evict.append((t, resident[(t, slot)], slot))
                load.append((t, part, slot))
                resident[(t, slot)] = part
        out.append((bucket, evict, load))
    return out


@pytest.mark.parametrize("order", ["inside_out", "affinity", "random"])
def test_two_slots_plan_as_before(order):
    """B = 2 (the default) keeps the working table and every swap of before, so training is
    bit-identical to the two-slot trainer (checked on the toy graph: P=3 and P=4, 2 epochs)."""
    layout = _layout(6)
    assert layout.num_rows == 2 * 4 + 7 + 2 * 2
    buckets = [b for e in range(2) for b in bucket_order(6, 6, order, seed=3, epoch=e)]
    steps, _ = plan(layout, buckets, {}, future=buckets[::-1])  # the future changes nothing at B=2
    assert [(s.bucket, s.evict, s.load) for s in steps] == _old_plan(layout, buckets, {})


def test_more_slots_evict_the_partition_needed_furthest():
    """Belady: slots hold 0, 1, 2; bucket (3, 3) evicts 1, needed after 2 and 0 (never first)."""
    layout = PartitionLayout([TypePartitions("a", 40, 4, seed=0)], buffer=3)
    start = {(0, 0): 0, (0, 1): 1, (0, 2): 2}
    steps, final = plan(layout, [(3, 3)], start, future=[(2, 0), (0, 0), (1, 2)])
    assert steps[0].evict == [(0, 1, 1)] and final[(0, 1)] == 3
    steps, _ = plan(layout, [(3, 3)], start, future=[(1, 1), (0, 1)])  # 2 never needed again
    assert steps[0].evict == [(0, 2, 2)]


@pytest.mark.parametrize("p", [8, 16])
@pytest.mark.parametrize("buffer", [3, 4, 8])
def test_beta_loads_fewer_partitions(p, buffer):
    """The buffer-aware order with furthest-next-use eviction loads each partition about
    P / (2 (B - 1)) times per epoch: near the bound B + (P (P - 1) - B (B - 1)) / (2 (B - 1)) (each
    load meets at most B - 1 new partners), and far fewer times than inside_out."""
    layout = PartitionLayout([TypePartitions("a", 10 * p, p, seed=0)], buffer=buffer)
    for epoch in range(3):
        beta = count_loads(layout, bucket_order(p, p, "beta", 0, epoch, buffer))
        inside = count_loads(layout, bucket_order(p, p, "inside_out", 0, epoch, buffer))
        bound = buffer + (p * (p - 1) - buffer * (buffer - 1)) / (2 * (buffer - 1))
        assert bound <= beta <= 1.25 * bound + 1, (beta, bound)
        assert beta < 0.75 * inside if buffer < p else beta == inside == p, (beta, inside)
