"""Training paths of the storage options, end to end on the small toy graph: edges read from
TensorStore (storage.edge_dir) in several edge chunks train exactly the model the in-memory edges
train; time-based commits (storage.checkpoint_every_seconds) commit after buckets, not only at
epoch ends; preserved snapshots (storage.checkpoint_preservation_interval) are the manifests of
their epochs and their data stays readable; a run stopped mid-epoch, in its second edge chunk,
resumes from its last commit to exactly the model of the uninterrupted run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cfg_of, trainer_of

from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.run import run

pytestmark = pytest.mark.integration

COMMON = ["data.toy.num_edges=8000", "entities.entity.num_partitions=2", "training.num_epochs=2",
          "training.num_edge_chunks=2", "eval.splits=[]", "training.calibration_steps=0",
          "storage.checkpoint_every_seconds=0"]


def _tables(ckpt) -> list[np.ndarray]:
    store = CheckpointStore(str(ckpt))
    out = [np.asarray(store.read_partition("entity", p).result()[0]) for p in range(2)]
    store.close()
    return out


@pytest.fixture(scope="module")
def in_memory(tmp_path_factory):
    """(run dir, metrics) of the reference run: edges in memory, epoch-end commits only."""
    out = tmp_path_factory.mktemp("in-memory")
    return out, run(cfg_of(COMMON), str(out))


def test_edges_from_tensorstore_in_chunks_train_the_same_model(in_memory, tmp_path):
    ref_dir, ref = in_memory
    m = run(cfg_of([*COMMON, f"storage.edge_dir={tmp_path / 'edges'}"]), str(tmp_path / "run"))
    assert any((tmp_path / "edges").rglob("*")), "no edges written to storage.edge_dir"
    # 2 epochs x 2 edge chunks, every training edge once per epoch
    assert len(m["history"]) == 2 and m["history"][0]["edges"] == ref["history"][0]["edges"]
    assert [h["loss"] for h in m["history"]] == pytest.approx([h["loss"] for h in ref["history"]], rel=1e-6)
    got_tables, want_tables = _tables(tmp_path / "run" / "checkpoint"), _tables(ref_dir / "checkpoint")
    for got, want in zip(got_tables, want_tables, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6)


def test_time_based_commits_and_snapshots(in_memory, tmp_path):
    """checkpoint_every_seconds tiny: a commit after (nearly) every bucket, where the reference
    commits once per epoch; preservation interval 1: snapshots/epoch_1 and epoch_2 name their
    epoch and the data they name reads back (epoch 2's is the final table)."""
    ref_dir, _ = in_memory
    out = tmp_path / "run"
    run(cfg_of([*COMMON[:-1], "storage.checkpoint_every_seconds=0.000001",
                "storage.checkpoint_preservation_interval=1"]), str(out))
    ref = CheckpointStore(str(ref_dir / "checkpoint"))
    assert ref.version == 2  # one commit per epoch
    ref.close()
    store = CheckpointStore(str(out / "checkpoint"))
    # 2 epochs x 2 edge chunks x 4 buckets: well over the 2 epoch-end commits
    assert store.version >= 8, store.version
    final = store.manifest
    store.close()
    snap_dir = out / "checkpoint" / "snapshots"
    snaps = {p.stem: json.loads(p.read_text()) for p in snap_dir.glob("epoch_*.json")}
    assert set(snaps) == {"epoch_1", "epoch_2"}, sorted(snaps)
    assert snaps["epoch_1"]["progress"]["epoch"] == 1 and snaps["epoch_2"]["progress"]["epoch"] == 2
    assert snaps["epoch_1"]["version"] < snaps["epoch_2"]["version"] == final["version"]
    assert snaps["epoch_2"]["tables"] == final["tables"]
    assert snaps["epoch_1"]["tables"] != final["tables"]  # epoch 1's data kept beside the newer
    for parts in snaps["epoch_1"]["tables"].values():
        for key in parts.values():
            assert (out / "checkpoint" / key / "emb").exists(), key


class _Stop(Exception):
    pass


def test_resume_mid_epoch_at_an_edge_chunk(in_memory, tmp_path):
    """Commits after every bucket; epoch 1 has 2 edge chunks of 4 buckets. The run is stopped
    twice in chunk 1, each time before a bucket's commit: at its bucket 1 (the last commit was
    chunk 0's bucket 3: a pass's last round is not committed, the epoch end is), then, resumed,
    at its bucket 3 (resumes inside chunk 1). The third start finishes with the uninterrupted
    run's tables, bit for bit, having trained each bucket after the last commit once more."""
    cfg = cfg_of([*COMMON, "storage.checkpoint_every_buckets=1"])
    ckpt = tmp_path / "ckpt"
    seen = []
    for stop_at, progress in ((1, None), (3, {"epoch": 0, "chunk": 0, "bucket": 3}),
                              (None, {"epoch": 0, "chunk": 1, "bucket": 2})):
        trainer = trainer_of(cfg, CheckpointStore(str(ckpt)))
        if progress is not None:
            assert trainer.progress == progress and trainer.history == []

        def on_bucket(s, stop_at=stop_at):
            seen.append((s["epoch"], s["chunk"], s["index"]))
            if (s["epoch"], s["chunk"], s["index"]) == (1, 1, stop_at):
                raise _Stop

        trainer.on_bucket = on_bucket
        if stop_at is None:
            trainer.fit()
        else:
            with pytest.raises(_Stop):
                trainer.fit()
        trainer.close()
    epoch1 = [(1, 0, i) for i in range(1, 5)] + [(1, 1, 1)] + [(1, 0, 4)] + [(1, 1, i) for i in (1, 2, 3)] \
        + [(1, 1, 3), (1, 1, 4)]
    assert seen == epoch1 + [(2, c, i) for c in (0, 1) for i in range(1, 5)]
    ref_dir, _ = in_memory
    for got, want in zip(_tables(ckpt), _tables(ref_dir / "checkpoint"), strict=True):
        np.testing.assert_array_equal(got, want)
