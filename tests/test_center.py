"""Read-out centering (`model.center_partitions`): PBG's softmax draws a positive's negatives from
its own partition, so training never compares partitions and their mean rows drift apart, while
full ranking compares every entity. Evaluation, export and prediction read each partition with its
mean row moved to its type's mean; training and checkpoints are unchanged."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cfg_of

from jgraph.cli.evaluate import evaluate
from jgraph.plan.partition import center_rows, partition_shifts
from jgraph.train.run import run
from jgraph.trained import load_run, open_run


def test_shifts_move_every_partition_mean_to_the_type_mean():
    rng = np.random.default_rng(0)
    sizes = [5, 0, 8, 3]
    rows = rng.standard_normal((16, 4)) + rng.standard_normal(4)
    members = np.split(rng.permutation(16), np.cumsum(sizes)[:-1])
    before = rows.copy()
    center_rows(rows, members)
    for m in members:
        if m.size:
            np.testing.assert_allclose(rows[m].mean(0), before.mean(0), atol=1e-6)
            np.testing.assert_allclose(rows[m] - rows[m].mean(0), before[m] - before[m].mean(0), atol=1e-6)
    np.testing.assert_allclose(rows.mean(0), before.mean(0), atol=1e-6)  # the type's mean stays
    means = np.stack([before[m].mean(0) if m.size else np.zeros(4) for m in members])
    shifts = partition_shifts(means, np.array(sizes))
    assert shifts.shape == (4, 4) and shifts.dtype == np.float32
    np.testing.assert_allclose(shifts[0], before.mean(0) - means[0], atol=1e-6)


@pytest.fixture(scope="module")
def partitioned_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("centered")
    m = run(cfg_of(["loss=softmax", "entities.entity.num_partitions=3", "training.num_epochs=3",
                    "training.calibration_steps=0"]), str(d))  # plain centering (no calibration)
    return d, m


@pytest.mark.integration
def test_training_evaluation_export_and_evaluate_agree(partitioned_run):
    """The evaluation at the end of training, `jgraph.cli.evaluate` and the rows export reads
    (OpenRun.partition) all see the centered table; the checkpoint itself is not centered."""
    d, m = partitioned_run
    res = evaluate(str(d), ["test"], ["filtered"], None, [])
    assert res["eval"]["test"]["filtered"]["avg"]["mrr"] == pytest.approx(
        m["eval"]["test"]["filtered"]["avg"]["mrr"], rel=1e-6)
    full = np.asarray(load_run(str(d)).emb)
    opened = open_run(str(d))
    tp = opened.layout.types[0]
    raw_means = []
    for p in range(3):
        rows = opened.partition(0, p)
        np.testing.assert_allclose(rows, full[tp.members[p]], atol=1e-6)
        np.testing.assert_allclose(rows.mean(0), full.mean(0), atol=1e-5)
        raw_means.append(opened.partition(0, p, centered=False).mean(0))
    opened.close()
    # as stored, the partitions' means are apart
    assert np.linalg.norm(np.stack(raw_means) - full.mean(0), axis=1).max() > 0.05


@pytest.mark.integration
def test_centered_partition_reads_only_itself(partitioned_run):
    """The training checkpoint stores each partition's mean row, so a centered read loads the one
    partition asked for (not every partition of the type for the means first) and gives the rows
    that centering from the rows themselves gives."""
    d, _ = partitioned_run
    opened = open_run(str(d))
    tp = opened.layout.types[0]
    reads = []
    read = opened.store.read_partition
    opened.store.read_partition = lambda *a, **k: reads.append(a) or read(*a, **k)
    rows = opened.partition(0, 2)
    assert reads == [("entity", 2)]
    raw = [opened.partition(0, p, centered=False) for p in range(3)]
    opened.close()
    # centering by hand: partition 2's rows moved so their mean is the whole type's mean row
    assert [len(r) for r in raw] == list(tp.sizes)
    type_mean = np.concatenate(raw).astype(np.float64).mean(0)
    want = raw[2] + (type_mean - raw[2].astype(np.float64).mean(0))
    np.testing.assert_allclose(rows, want, atol=1e-5)


@pytest.mark.integration
def test_center_partitions_false_reads_the_rows_as_stored(partitioned_run):
    d, m = partitioned_run
    raw = evaluate(str(d), ["test"], ["filtered"], None, ["model.center_partitions=false"])
    opened = open_run(str(d), ["model.center_partitions=false"])
    np.testing.assert_array_equal(opened.partition(0, 1), opened.partition(0, 1, centered=False))
    tp = opened.layout.types[0]
    stored = [np.asarray(opened.store.read_partition("entity", p).result()[0]) for p in range(3)]
    opened.close()
    # load_run (what evaluation reads) gives the checkpoint's rows themselves, every partition
    full = np.asarray(load_run(str(d), ["model.center_partitions=false"]).emb)
    for p in range(3):
        n = len(tp.members[p])  # the stored table may carry padding rows after the members
        np.testing.assert_array_equal(full[tp.members[p]], stored[p][:n])
    assert raw["eval"]["test"]["filtered"]["avg"]["mrr"] != m["eval"]["test"]["filtered"]["avg"]["mrr"]
