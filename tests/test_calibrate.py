"""Partition calibration (jgraph/train/calibrate.py): after training with partitions, one shift per
partition is fitted with the softmax over every entity of the type; evaluation, export and the
evaluate CLI read the rows with the saved shifts."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cfg_of, trainer_of

from jgraph.cli.evaluate import evaluate
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.calibrate import fit_partition_shifts
from jgraph.train.run import run
from jgraph.trained import load_run, open_run


@pytest.mark.parametrize("model", [["loss=softmax"],
                                   ["model=transe", "model.reciprocal=false", "loss=softmax"]])
def test_fitted_shifts_lower_the_full_softmax_loss(model):
    """Reciprocal and standard mode (one relation per step): the loss falls, the shifts of the
    unpartitioned rows stay 0, and from zero shifts the fit moves them."""
    cfg = cfg_of(model + ["entities.entity.num_partitions=3", "storage.save=false",
                          "training.num_epochs=2", "training.calibration_steps=0"])
    trainer = trainer_of(cfg)
    trainer.fit()
    emb, offsets = trainer.full_tables(read_out=False)
    tp = trainer.layout.types[0]
    tr = trainer.ds.splits["train"]
    g = tp.num_partitions + 1  # a 4th shift nobody trains
    trainable = np.array([True, True, True, False])
    shifts, before, after = fit_partition_shifts(
        trainer.model, trainer.state.params, emb, offsets, np.array([tp.count]), tp.part_of,
        np.zeros((g, cfg.model.dimension), np.float32), trainable, tr.lhs, tr.rel, tr.rhs, 60, 0)
    trainer.close()
    assert shifts.shape == (g, cfg.model.dimension)
    assert after < before, (before, after)
    assert np.abs(shifts[:3]).max() > 0 and not shifts[3].any()


def test_read_out_after_calibration_reuses_its_table():
    """The evaluation table right after calibrate() is its assembled table plus the fitted shifts,
    read with no partition loaded from the store again; the next call (nothing kept) assembles
    from the store and gives the same rows."""
    cfg = cfg_of(["loss=softmax", "entities.entity.num_partitions=3", "storage.save=false",
                  "training.num_epochs=1"])
    trainer = trainer_of(cfg)
    trainer.fit()
    assert trainer.calibrate() is not None
    reads = []
    read = trainer.store.read_partition
    trainer.store.read_partition = lambda *a, **k: reads.append(a) or read(*a, **k)
    reused, offsets = trainer.full_tables()
    assert reads == []
    assembled, offsets_again = trainer.full_tables()
    assert len(reads) >= 1  # the partitions not resident at the end of training
    trainer.close()
    np.testing.assert_array_equal(offsets, offsets_again)
    np.testing.assert_allclose(np.asarray(reused), np.asarray(assembled), atol=1e-6)
    assert np.abs(np.asarray(reused)).max() > 0


def test_calibrated_shifts_are_saved_and_read_out_everywhere(tmp_path):
    """A 3-partition run calibrates (default), saves its shifts with the parameters, and the
    evaluation at the end of training, `jgraph.cli.evaluate`, `load_run` and `OpenRun.partition` all
    read the stored rows plus those shifts."""
    m = run(cfg_of(["loss=softmax", "entities.entity.num_partitions=3", "training.num_epochs=2"]),
            str(tmp_path))
    assert m["calibration"]["loss_after"] < m["calibration"]["loss_before"]
    res = evaluate(str(tmp_path), ["test"], ["filtered"], None, [])
    assert res["eval"]["test"]["filtered"]["avg"]["mrr"] == pytest.approx(
        m["eval"]["test"]["filtered"]["avg"]["mrr"], rel=1e-6)
    opened = open_run(str(tmp_path))
    assert set(opened._shifts) == {0} and opened._shifts[0].shape == (3, 16)
    full = np.asarray(load_run(str(tmp_path)).emb)
    tp = opened.layout.types[0]
    for p in range(3):
        stored = opened.partition(0, p, centered=False)
        np.testing.assert_allclose(opened.partition(0, p), stored + opened._shifts[0][p], atol=1e-6)
        np.testing.assert_allclose(full[tp.members[p]], stored + opened._shifts[0][p], atol=1e-6)
    opened.close()


def test_one_partition_is_not_calibrated(tmp_path):
    m = run(cfg_of(["loss=softmax", "training.num_epochs=1"]), str(tmp_path))
    assert m["calibration"] is None
    opened = open_run(str(tmp_path))
    assert opened._shifts == {}
    opened.close()


def test_a_resumed_run_refits_the_shifts(tmp_path):
    """Shifts belong to the rows they were fitted to: a run resumed for more epochs drops them
    when it trains again and fits new ones at the end."""
    common = ["loss=softmax", "entities.entity.num_partitions=3", f"storage.checkpoint_dir={tmp_path / 'c'}"]
    run(cfg_of(common + ["training.num_epochs=1"]), str(tmp_path / "a"))
    first = open_run(str(tmp_path / "c"))._shifts[0]
    cfg = cfg_of(common + ["training.num_epochs=2"])
    trainer = trainer_of(cfg, CheckpointStore(str(tmp_path / "c")))
    np.testing.assert_array_equal(trainer.part_shifts[0], first)  # restored with the checkpoint
    trainer.fit()
    assert trainer.part_shifts == {}
    assert trainer.calibrate() is not None
    assert not np.array_equal(trainer.part_shifts[0], first)
    trainer.close()
