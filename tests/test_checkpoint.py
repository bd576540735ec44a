"""Versioned checkpoints: writes are invisible until the atomic commit, reads see pending writes,
snapshots keep their data, leftovers of crashed writes are collected (memory:// and a real path)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest

from jgraph.storage.checkpoint import CheckpointError, CheckpointStore
from jgraph.storage.shards import column_sum


def rows(seed: int, m: int = 5, d: int = 3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, d)).astype(np.float32), rng.random(m).astype(np.float32)


@pytest.fixture(params=["memory", "file"])
def location(request, tmp_path):
    return "memory://ckpt/" if request.param == "memory" else str(tmp_path / "ckpt")


def test_commit_is_the_only_switch(location):
    store = CheckpointStore(location)
    assert not store.exists() and store.version == 0
    emb, acc = rows(0)
    store.write_partition("e", 0, emb, acc)
    store.write_params({"w": np.arange(3.0)})
    # the pending partition is readable by this store (a read waits for its write) ...
    got = store.read_partition("e", 0).result()
    np.testing.assert_array_equal(got[0], emb)
    # ... but nothing is committed yet
    assert not store.exists()
    assert store.commit({"epoch": 1}) == 1
    assert store.manifest["progress"] == {"epoch": 1}
    np.testing.assert_array_equal(store.read_params()["w"], np.arange(3.0))
    store.close()


def test_commit_makes_pending_data_durable_before_the_switch(tmp_path, monkeypatch):
    """Partition writes skip the per-file fsync; commit fsyncs every file and directory of the
    data the new manifest names (up to the checkpoint root) before it replaces the manifest."""
    import jgraph.storage.checkpoint as ck

    root = tmp_path / "ckpt"
    store = CheckpointStore(str(root))
    store.write_partition("e", 0, *rows(0))
    store.write_partition("e", 1, *rows(1))
    store.wait()
    synced: list[str] = []
    real_fsync, real_manifest = ck.kv.fsync_path, store._write_manifest
    monkeypatch.setattr(ck.kv, "fsync_path", lambda path: (synced.append(path), real_fsync(path)))

    def manifest(key, m):
        synced.append("MANIFEST")
        real_manifest(key, m)

    monkeypatch.setattr(store, "_write_manifest", manifest)
    store.commit({"epoch": 1})
    before = synced[: synced.index("MANIFEST")]
    files = {str(p) for p in (root / "tables").rglob("*") if p.is_file()}
    dirs = {str(p) for p in (root / "tables").rglob("*") if p.is_dir()} | {str(root / "tables"), str(root)}
    assert files and files <= set(before), "every partition file is synced before the switch"
    assert dirs <= set(before), "and every directory naming one, up to the root"
    store.close()


def test_versions_and_garbage(tmp_path):
    loc = str(tmp_path / "ckpt")
    store = CheckpointStore(loc)
    for v in range(1, 4):
        store.write_partition("e", 0, *rows(v))
        store.write_partition("e", 1, *rows(10 + v))
        store.write_params({"w": np.full(2, float(v))})
        store.commit({"epoch": v})
    keys = {p.parent.name for p in (tmp_path / "ckpt" / "tables").glob("*/*/v*/emb")}
    assert keys == {"v3"}, "data of old versions is collected after the switch"
    reopened = CheckpointStore(loc)
    assert reopened.version == 3
    np.testing.assert_array_equal(reopened.read_partition("e", 1).result()[0], rows(13)[0])
    store.close()
    reopened.close()


def test_uncommitted_write_is_invisible_and_collected(tmp_path):
    loc = str(tmp_path / "ckpt")
    store = CheckpointStore(loc)
    store.write_partition("e", 0, *rows(1))
    store.write_params({"w": np.zeros(1)})
    store.commit({"epoch": 1})
    store.write_partition("e", 0, *rows(2))  # a crash before the commit:
    store.wait()
    store.owner_lock.release()  # (the process is gone)
    reader = CheckpointStore(loc)  # ... a new process sees version 1 only
    np.testing.assert_array_equal(reader.read_partition("e", 0).result()[0], rows(1)[0])
    resumed = CheckpointStore(loc, writer=True)  # the next writer leaves v2 (newer than the
    assert (tmp_path / "ckpt" / "tables" / "e" / "0" / "v2").exists()  # manifest) alone ...
    resumed.write_partition("e", 1, *rows(3))
    resumed.commit({"epoch": 2})  # ... until its own commit makes v2 current without it
    assert not (tmp_path / "ckpt" / "tables" / "e" / "0" / "v2").exists()
    np.testing.assert_array_equal(reader.read_partition("e", 0).result()[0], rows(1)[0])
    resumed.close()


def test_snapshot_keeps_its_data(tmp_path):
    loc = str(tmp_path / "ckpt")
    store = CheckpointStore(loc)
    store.write_partition("e", 0, *rows(1))
    store.write_params({"w": np.zeros(1)})
    store.commit({"epoch": 1})
    store.snapshot("epoch_1")
    store.write_partition("e", 0, *rows(2))
    store.write_params({"w": np.ones(1)})
    store.commit({"epoch": 2})
    snap = json.loads((tmp_path / "ckpt" / "snapshots" / "epoch_1.json").read_text())
    assert snap["version"] == 1
    assert (tmp_path / "ckpt" / "tables" / "e" / "0" / "v1").is_dir(), "snapshot data must survive"
    store.close()


def test_corrupt_manifest_is_a_clear_error(tmp_path):
    (tmp_path / "ckpt").mkdir()
    (tmp_path / "ckpt" / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="unreadable manifest"):
        CheckpointStore(str(tmp_path / "ckpt"))


def test_partitions_are_stored_with_the_mean_of_their_real_rows(tmp_path):
    """write_partition / write_partition_blocks with `count` store the mean of the first `count`
    rows (padding excluded, bfloat16 rows as read back); without it, or never written: None."""
    store = CheckpointStore(str(tmp_path / "c"))
    rng = np.random.default_rng(0)
    emb = rng.standard_normal((10, 3)).astype(np.float32) + 5.0
    store.write_partition("e", 0, emb, np.zeros(10, np.float32), count=7)
    half = emb.astype(jnp.bfloat16)
    store.write_partition_blocks("e", 1, (10, 3), lambda a, b: half[a:b], np.zeros(10, np.float32),
                                 "bfloat16", count=4)
    store.write_partition("e", 2, emb, np.zeros(10, np.float32))
    store.commit({"epoch": 1})
    np.testing.assert_allclose(store.read_partition_mean("e", 0), emb[:7].astype(np.float64).mean(0),
                               rtol=1e-6)
    np.testing.assert_allclose(store.read_partition_mean("e", 1),
                               half[:4].astype(np.float64).mean(0), rtol=1e-6)
    assert store.read_partition_mean("e", 2) is None and store.read_partition_mean("e", 3) is None
    store.close()


@pytest.mark.parametrize("n", [0, 5, 128, 300, 20_000])
def test_column_sum_is_the_float64_sum(n):
    x = np.random.default_rng(n).standard_normal((n, 7)).astype(np.float32) + 3.0
    np.testing.assert_allclose(column_sum(x), x.astype(np.float64).sum(0), rtol=1e-6, atol=1e-9)


def test_a_failed_background_write_stops_the_commit(location, monkeypatch):
    """A partition write that fails in the background: `done` still runs, commit re-raises its
    error and switches nothing (same version, same manifest, the old rows readable, also by a
    second store)."""
    from jgraph.storage import checkpoint

    store = CheckpointStore(location)
    emb0, acc0 = rows(0)
    store.write_partition("e", 0, emb0, acc0)
    assert store.commit({"epoch": 1}) == 1
    before = json.loads(json.dumps(store.manifest))

    real = checkpoint.write_blocks

    def broken(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint, "write_blocks", broken)
    released = []
    emb1, acc1 = rows(1)
    fut = store.write_partition("e", 0, emb1, acc1, done=lambda: released.append(1))
    with pytest.raises(OSError, match="disk full"):
        fut.result()
    assert released == [1]
    with pytest.raises(OSError, match="disk full"):
        store.commit({"epoch": 2})
    assert store.version == 1 and store.manifest == before
    if not location.startswith("memory://"):  # a second store sees the old version on disk
        other = CheckpointStore(location)
        assert other.version == 1 and other.manifest["progress"] == {"epoch": 1}
        np.testing.assert_array_equal(other.read_partition("e", 0).result()[0], emb0)
        other.close()
    monkeypatch.setattr(checkpoint, "write_blocks", real)
    with pytest.raises(OSError, match="disk full"):  # closing waits for the writes: same error
        store.close()
