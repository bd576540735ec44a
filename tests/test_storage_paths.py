"""Training paths of the storage options, end to end on the small toy graph: edges read from
TensorStore (storage.edge_dir) in several edge chunks train exactly the model the in-memory edges
train; time-based commits (storage.checkpoint_every_seconds) commit after buckets, not only at
epoch ends; preserved snapshots (storage.checkpoint_preservation_interval) are the manifests of
their epochs and their data stays readable."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cfg_of

from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.run import run

pytestmark = pytest.mark.integration

COMMON = ["entities.entity.num_partitions=2", "training.num_epochs=2", "training.num_edge_chunks=2",
          "eval.splits=[]", "training.calibration_steps=0", "storage.checkpoint_every_seconds=0"]


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
