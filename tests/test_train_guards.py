"""What keeps a training run honest: the divergence guard stops before a ruined version is
committed (the last good one stays), a resume refuses changed scoring settings, metrics files
survive a failed write and list each epoch once, impossible values are rejected up front."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from helpers import cfg_of, trainer_of

from jgraph.errors import ConfigError, TrainingDiverged
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.run import run
from jgraph.validation import validate

PARTED = ["entities.entity.num_partitions=3", "storage.checkpoint_every_buckets=1",
          "storage.checkpoint_every_seconds=0", "training.num_epochs=1", "training.calibration_steps=0",
          "eval.splits=[]"]


def test_huge_lr_stops_before_the_first_commit(tmp_path):
    """optimizer.lr=1e6: finite but enormous losses; the rows' size gives it away after the first
    bucket, before anything is committed."""
    ckpt = tmp_path / "ckpt"
    with pytest.raises(TrainingDiverged, match=r"row coordinate"):
        run(cfg_of([*PARTED, "optimizer.lr=1e6", f"storage.checkpoint_dir={ckpt}"]), str(tmp_path / "a"))
    assert not CheckpointStore(str(ckpt)).exists()


def _sabotaged(trainer, at: int, rows: float = 1.0, loss: float = 1.0):
    """From the `at`-th bucket on, scale the table's rows or the reported loss by the factors."""
    real, calls = trainer.buckets.train, []

    def train(state, tables, *args):
        state, tables, totals = real(state, tables, *args)
        calls.append(1)
        if len(calls) >= at:
            tables = tables._replace(emb=tables.emb * rows)
            totals = {**totals, "loss": totals["loss"] * loss}
        return state, tables, totals

    trainer.buckets.train = train


@pytest.mark.parametrize("rows, loss, why", [(1e4, 1.0, "row coordinate"), (1.0, 1e3, "per-edge loss")])
def test_blow_up_mid_run_keeps_the_last_good_version(tmp_path, rows, loss, why):
    """Committing after every bucket, the 4th bucket blows up: the run stops with the 3rd bucket's
    version as the checkpoint, whose rows are as trained (no blown-up row)."""
    ckpt = str(tmp_path / "ckpt")
    trainer = trainer_of(cfg_of(PARTED), CheckpointStore(ckpt, writer=True))
    _sabotaged(trainer, at=4, rows=rows, loss=loss)
    with pytest.raises(TrainingDiverged, match=why):
        trainer.fit()
    trainer.close()
    store = CheckpointStore(ckpt)
    assert store.manifest["progress"] == {"epoch": 0, "chunk": 0, "bucket": 3}
    written = [d[0] for d in (store.read_partition("entity", p).result() for p in range(3)) if d]
    assert written  # (a partition the first 3 buckets never touched is not in the checkpoint yet)
    for emb in written:
        assert np.isfinite(emb).all() and np.abs(emb).max() < 10
    store.close()


def test_guard_off_lets_the_same_blow_up_through(tmp_path):
    trainer = trainer_of(cfg_of([*PARTED, "training.divergence_factor=0"]))
    _sabotaged(trainer, at=4, rows=1e4)
    assert len(trainer.fit()) == 1
    trainer.close()


@pytest.mark.parametrize("override, key", [
    ("optimizer.lr=0", "optimizer.lr"), ("optimizer.lr=-0.1", "optimizer.lr"),
    ("optimizer.relation_lr=0", "relation_lr"), ("eval.hits=[1,0]", "eval.hits"),
    ("training.num_epochs=-1", "training.num_epochs"),
    ("training.divergence_factor=0.5", "divergence_factor"),
])
def test_impossible_values_are_rejected(override, key):
    validate(cfg_of([]))  # the base is valid
    with pytest.raises(ConfigError, match=key):
        validate(cfg_of([override]))


@pytest.fixture(scope="module")
def one_epoch(tmp_path_factory):
    """(checkpoint dir, overrides) of a one-epoch run that the resume checks below only reopen."""
    tmp_path = tmp_path_factory.mktemp("one-epoch")
    ckpt = str(tmp_path / "ckpt")
    base = ["training.num_epochs=1", "eval.splits=[]", f"storage.checkpoint_dir={ckpt}"]
    run(cfg_of(base), str(tmp_path / "a"))
    return ckpt, base


@pytest.mark.parametrize("change, key", [("model.comparator=cos", "comparator"),
                                         ("loss.name=logistic", "loss"), ("loss.margin=0.5", "margin"),
                                         ("model.operator=diagonal", "operator")])
def test_resume_refuses_a_changed_scoring_setting(one_epoch, change, key):
    ckpt, base = one_epoch
    store = CheckpointStore(ckpt, writer=True)
    with pytest.raises(ValueError, match=f"{key}: .* in the checkpoint"):
        trainer_of(cfg_of([*base, change]), store)
    store.close()
    trainer_of(cfg_of(base), CheckpointStore(ckpt, writer=True)).close()  # unchanged: resumes


def test_checkpoint_from_before_the_scoring_keys_still_resumes(tmp_path, monkeypatch):
    """A fingerprint without the keys added later (comparator, loss, ...) is compared on the keys it
    has."""
    from jgraph.train import checkpointing

    new = checkpointing.fingerprint
    old_keys = ("dimension", "operator", "reciprocal", "global_emb", "entities", "relations", "seed")
    monkeypatch.setattr(checkpointing, "fingerprint", lambda c, d: {k: new(c, d)[k] for k in old_keys})
    ckpt = str(tmp_path / "ckpt")
    base = ["training.num_epochs=1", "eval.splits=[]", f"storage.checkpoint_dir={ckpt}"]
    run(cfg_of(base), str(tmp_path / "a"))
    monkeypatch.setattr(checkpointing, "fingerprint", new)
    m = run(cfg_of([*base[1:], "training.num_epochs=2"]), str(tmp_path / "a"))
    assert [h["epoch"] for h in m["history"]] == [1, 2]


def test_failed_save_then_resume_lists_each_epoch_once(tmp_path, monkeypatch):
    """The 2nd epoch's commit fails (disk full): its line was already written; the resumed run
    trains epoch 2 again and metrics.jsonl lists epochs 1 and 2 once each."""
    out, ckpt = tmp_path / "run", str(tmp_path / "ckpt")
    cfg = cfg_of(["training.num_epochs=2", "eval.splits=[]", f"storage.checkpoint_dir={ckpt}"])
    real, calls = CheckpointStore.commit, []

    def commit(self, *a, **k):
        calls.append(1)
        if len(calls) == 2:
            raise OSError(28, "No space left on device")
        return real(self, *a, **k)

    monkeypatch.setattr(CheckpointStore, "commit", commit)
    with pytest.raises(OSError, match="No space"):
        run(cfg, str(out))
    lines = [json.loads(x)["epoch"] for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert lines == [1, 2]  # epoch 2 trained and logged, never committed
    monkeypatch.setattr(CheckpointStore, "commit", real)
    m = run(cfg, str(out))
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [1, 2]
    assert lines == json.loads(json.dumps(m["history"]))


def test_metrics_json_survives_a_failed_write(tmp_path, monkeypatch):
    """A full disk while metrics.json is rewritten leaves the previous file whole, no temp file."""
    out = tmp_path / "run"
    cfg = cfg_of(["training.num_epochs=1", "storage.save=false", "eval.splits=[test]"])
    first = run(cfg, str(out))
    before = (out / "metrics.json").read_text()
    real = os.fsync

    def fsync(fd):
        if os.readlink(f"/proc/self/fd/{fd}").split("/")[-1].startswith("metrics.json.tmp"):
            raise OSError(28, "No space left on device")
        return real(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    with pytest.raises(OSError, match="No space"):
        run(cfg, str(out))
    assert (out / "metrics.json").read_text() == before
    assert json.loads(before)["eval"]["test"]["filtered"]["avg"]["mrr"] == pytest.approx(
        first["eval"]["test"]["filtered"]["avg"]["mrr"])
    assert sorted(p.name for p in out.iterdir() if ".tmp" in p.name) == []
