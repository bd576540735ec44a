"""One way to do each thing around the trained tables: first-touch rows are drawn one way (the
working table's slots, read-outs and warm starts agree), training and trained runs read out through
readout.assemble, a trained run's config goes through the training config's checks."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import cfg_of, trainer_of

from jgraph.errors import ConfigError
from jgraph.plan.residency import plan
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.run import run
from jgraph.train.tables import initial_rows
from jgraph.trained import config_from_manifest, load_run


def test_first_touch_rows_are_drawn_one_way():
    """A partition entering a slot for the first time holds exactly its `initial_rows`, which is
    what the read-out shows for partitions training never touched."""
    cfg = cfg_of(["entities.entity.num_partitions=3", "model.init_scale=0.5", "storage.save=false"])
    trainer = trainer_of(cfg)
    untouched, _ = trainer.full_tables(read_out=False)  # nothing resident, nothing stored
    swap = plan(trainer.layout, [(0, 2)], {})[0][0]
    trainer.table.enter(swap, {}, lambda fn: fn())
    assert sorted(trainer.table.resident.values()) == [0, 2]
    entered, _ = trainer.full_tables(read_out=False)  # partitions 0 and 2 from their slots
    np.testing.assert_array_equal(np.asarray(entered), np.asarray(untouched))
    tp = trainer.layout.types[0]
    start = trainer.layout.slot_start[0][swap.slot_of[(0, 2)]]
    slot = np.asarray(trainer.tables.emb[start : start + tp.capacity])
    np.testing.assert_array_equal(slot, initial_rows(cfg, 0, 2, tp.capacity))
    assert 0.45 < slot.std() < 0.55  # N(0, init_scale^2)
    assert not np.array_equal(initial_rows(cfg, 0, 1, tp.capacity), slot)  # each partition its own
    trainer.close()


def test_training_and_the_trained_run_read_out_the_same_table(tmp_path):
    """Trainer.full_tables (resident partitions from the working table) and load_run (every
    partition from the checkpoint) give the same centred rows, in id order."""
    cfg = cfg_of(["entities.entity.num_partitions=3", "training.num_epochs=1",
                  "training.calibration_steps=0", f"storage.checkpoint_dir={tmp_path / 'ckpt'}"])
    trainer = trainer_of(cfg, CheckpointStore(str(tmp_path / "ckpt"), writer=True))
    trainer.fit()
    emb, offsets = trainer.full_tables()
    trainer.close()
    loaded = load_run(str(tmp_path / "ckpt"))
    np.testing.assert_array_equal(np.asarray(loaded.emb), np.asarray(emb))
    np.testing.assert_array_equal(loaded.offsets, offsets)
    assert np.asarray(emb).shape == (400, 16)


def test_warm_start_unmatched_entities_get_their_first_touch_rows(tmp_path, monkeypatch):
    """Warm start: entities the source run knows keep its rows; the others start from the rows
    training would have drawn for them (`initial_rows`), not from a draw of their own."""
    from jgraph.train import warm_start

    src = tmp_path / "src"
    run(cfg_of(["training.num_epochs=1", "eval.splits=[]"]), str(src))
    real = warm_start._match

    def every_other(new, old, n_new, n_old, what):  # the odd entity ids: unknown to the source
        idx = real(new, old, n_new, n_old, what)
        return np.where(np.arange(idx.size) % 2 == 0, idx, -1) if what.startswith("entity") else idx

    monkeypatch.setattr(warm_start, "_match", every_other)
    cfg = cfg_of(["training.num_epochs=0", f"storage.init_path={src}",
                  f"storage.checkpoint_dir={tmp_path / 'ckpt'}"])
    trainer = trainer_of(cfg, CheckpointStore(str(tmp_path / "ckpt"), writer=True))
    got = np.asarray(trainer.full_tables()[0])
    trainer.close()
    source = np.asarray(load_run(str(src)).emb)
    fresh = initial_rows(cfg, 0, 0, trainer.layout.types[0].capacity)
    assert got.shape == source.shape == (400, 16)
    np.testing.assert_array_equal(got[0::2], source[0::2])
    np.testing.assert_array_equal(got[1::2], fresh[1::2])


def test_a_trained_runs_config_is_checked_like_a_training_config():
    good = {"config": {"model": {"dimension": 8}}}
    assert config_from_manifest(good).model.dimension == 8
    assert config_from_manifest(good, ["optimizer.lr=0.5"]).optimizer.lr == 0.5
    with pytest.raises(ConfigError, match="model.dimenzion"):
        config_from_manifest({"config": {"model": {"dimenzion": 8}}})
    with pytest.raises(ConfigError, match="data.rooot"):
        config_from_manifest(good, ["data.rooot=/x"])
    with pytest.raises(ConfigError, match="optimizer.lr"):
        config_from_manifest({"config": {"optimizer": {"lr": 0.0}}})
