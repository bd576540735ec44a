"""One writer per checkpoint location, readers that never delete, verified partition reads
(issue 24 items 1, 2, 4, 12): the lock record, its takeover rules, clean-up only by the lock
holder and never of newer versions, a missing or altered shard as a CheckpointError."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jgraph.storage import lock
from jgraph.storage.checkpoint import CheckpointError, CheckpointStore
from jgraph.storage.lock import LOCK, LockHeld


def rows(seed: int, m: int = 5, d: int = 3):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((m, d)).astype(np.float32), rng.random(m).astype(np.float32)


def committed(loc: str, *seeds: int) -> None:
    """Versions 1.. of partition e/0 (one per seed), committed by a writer that then lets go."""
    store = CheckpointStore(loc, writer=True)
    for s in seeds:
        store.write_partition("e", 0, *rows(s))
        store.write_params({"w": np.full(1, s)})
        store.commit({"epoch": s})
    store.close()


def put_record(loc: Path, **fields) -> dict:
    rec = {**lock.owner_record(), **fields}
    loc.mkdir(parents=True, exist_ok=True)
    (loc / LOCK).write_text(json.dumps(rec))
    return rec


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_second_writer_fails_at_once_naming_the_owner(tmp_path):
    loc = str(tmp_path / "c")
    first = CheckpointStore(loc, writer=True)
    t0 = time.perf_counter()
    with pytest.raises(LockHeld, match=f"in use by pid {os.getpid()} on {socket.gethostname()}"):
        CheckpointStore(loc, writer=True)
    assert time.perf_counter() - t0 < 1.0
    # a store that only reads is not a writer: it opens (and reads) while the lock is held
    reader = CheckpointStore(loc)
    assert reader.owner_lock.record is None
    first.close()
    assert not (tmp_path / "c" / LOCK).exists(), "close lets go of the lock"
    CheckpointStore(loc, writer=True).close()


def test_first_write_takes_the_lock(tmp_path):
    loc = str(tmp_path / "c")
    a, b = CheckpointStore(loc), CheckpointStore(loc)
    a.write_partition("e", 0, *rows(0))
    with pytest.raises(LockHeld):
        b.write_partition("e", 1, *rows(1))
    a.close()
    b.close()


@pytest.mark.parametrize("owner", ["dead pid", "reused pid", "rebooted host", "expired lease"])
def test_stale_lock_is_taken_over_when_the_owner_is_provably_gone(tmp_path, owner):
    fields = {"dead pid": {"pid": dead_pid()},
              "reused pid": {"pid": os.getppid(), "start": "1"},  # a live pid, another start time
              "rebooted host": {"pid": os.getppid(), "boot": "another-boot"},
              "expired lease": {"host": "elsewhere", "renewed": time.time() - 1000, "lease": 300}}
    put_record(tmp_path / "c", **fields[owner])
    store = CheckpointStore(str(tmp_path / "c"), writer=True)
    rec = json.loads((tmp_path / "c" / LOCK).read_text())
    assert rec["pid"] == os.getpid() and rec["token"] == store.owner_lock.record["token"]
    store.close()


@pytest.mark.parametrize("owner", ["live pid", "other host, fresh lease"])
def test_live_owner_is_never_taken_over(tmp_path, owner):
    parent = os.getppid()
    fields = {"live pid": {"pid": parent, "start": lock.process_start(parent)},
              "other host, fresh lease": {"host": "elsewhere", "pid": 1234}}
    put_record(tmp_path / "c", **fields[owner])
    with pytest.raises(LockHeld, match="in use by pid"):
        CheckpointStore(str(tmp_path / "c"), writer=True)


def test_a_zombie_owner_counts_as_gone(tmp_path):
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.time() + 10
    while lock.process_start(p.pid) is not None:  # exited, not yet reaped: a zombie
        assert time.time() < deadline
        time.sleep(0.02)
    assert os.path.exists(f"/proc/{p.pid}")
    put_record(tmp_path / "c", pid=p.pid)
    CheckpointStore(str(tmp_path / "c"), writer=True).close()
    p.wait()


def test_a_writer_that_lost_its_lock_commits_nothing(tmp_path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    store = CheckpointStore(loc, writer=True)
    store.write_partition("e", 0, *rows(2))
    put_record(tmp_path / "c", host="elsewhere", pid=99)  # another process took it over
    with pytest.raises(LockHeld, match="lost the checkpoint lock.*pid 99 on elsewhere"):
        store.commit({"epoch": 2})
    assert json.loads((tmp_path / "c" / "checkpoint.json").read_text())["version"] == 1


def test_the_lease_is_renewed(tmp_path):
    store = CheckpointStore(str(tmp_path / "c"))
    store.owner_lock.lease = 0.2
    store.write_params({"w": np.zeros(1)})
    first = json.loads((tmp_path / "c" / LOCK).read_text())["renewed"]
    time.sleep(0.5)
    assert json.loads((tmp_path / "c" / LOCK).read_text())["renewed"] > first
    store.close()


def test_object_store_lease_is_conditional(tmp_path):
    """memory:// stands for an object store: the same conditional writes decide the owner."""
    a = CheckpointStore("memory://ck/")
    b = CheckpointStore("memory://ck/", context=a.context)
    a.write_params({"w": np.zeros(1)})
    with pytest.raises(LockHeld):
        b.write_params({"w": np.zeros(1)})
    a.close()
    b.write_params({"w": np.ones(1)})
    b.close()


def test_readers_never_delete(tmp_path):
    """Opening (the predict/export/evaluate path) deletes nothing, not even crash leftovers;
    the lock holder deletes old unreferenced versions only."""
    loc = str(tmp_path / "c")
    committed(loc, 1, 2)
    leftover = tmp_path / "c" / "tables" / "e" / "9" / "v1"  # an unreferenced old version
    leftover.mkdir(parents=True)
    (leftover / "zarr.json").write_text("{}")
    reader = CheckpointStore(loc)
    np.testing.assert_array_equal(reader.read_partition("e", 0).result()[0], rows(2)[0])
    reader.close()
    assert leftover.exists()
    CheckpointStore(loc, writer=True).close()
    assert not leftover.exists()


def test_clean_up_never_touches_versions_newer_than_the_manifest(tmp_path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    owner = CheckpointStore(loc, writer=True)
    helper = CheckpointStore(loc, writer=False)  # a distributed run's other process
    helper.write_partition("e", 1, *rows(5))
    helper.write_params({"w": np.ones(1)})
    helper.wait()
    owner.collect_garbage()
    assert (tmp_path / "c" / "tables" / "e" / "1" / "v2").is_dir()
    assert (tmp_path / "c" / "params" / "v2.npz").is_file()
    owner.close()


def test_a_deleted_shard_is_an_error_not_zeros(tmp_path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    shards = [p for p in (tmp_path / "c" / "tables" / "e" / "0" / "v1" / "emb").rglob("*")
              if p.is_file() and p.name != "zarr.json"]
    assert shards
    shards[0].unlink()
    store = CheckpointStore(loc)
    with pytest.raises(CheckpointError, match="tables/e/0/v1: data missing"):
        store.read_partition("e", 0).result()
    with pytest.raises(CheckpointError, match="data missing"):
        blocks, _ = store.read_partition_blocks("e", 0)
        list(blocks)


@pytest.mark.parametrize("path", ["read_partition", "read_partition_blocks"])
def test_an_altered_shard_fails_its_checksum(tmp_path, path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    manifest = json.loads((tmp_path / "c" / "checkpoint.json").read_text())
    assert "tables/e/0/v1" in manifest["checksums"]
    shard = next(p for p in (tmp_path / "c" / "tables" / "e" / "0" / "v1" / "emb").rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(shard.read_bytes())
    data[3] ^= 0x40  # a bit of the first row: TensorStore's own checksum covers only the index
    shard.write_bytes(bytes(data))
    store = CheckpointStore(loc)
    with pytest.raises(CheckpointError, match="tables/e/0/v1: checksum"):
        if path == "read_partition":
            store.read_partition("e", 0).result()
        else:
            blocks, _ = store.read_partition_blocks("e", 0)
            list(blocks)


def test_altered_or_truncated_parameters_are_a_checkpoint_error(tmp_path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    npz = tmp_path / "c" / "params" / "v1.npz"
    good = npz.read_bytes()
    at = good.index(np.full(1, 1).tobytes())  # the array's bytes inside the zip
    for bad in (good[:at] + bytes([good[at] ^ 1]) + good[at + 1:], good[: len(good) // 2]):
        npz.write_bytes(bad)
        with pytest.raises(CheckpointError, match="params/v1.npz: damaged"):
            CheckpointStore(loc).read_params()


def test_a_partition_another_process_wrote_is_verified_too(tmp_path):
    """Distributed: process 1 writes under process 0's lock and records its CRC-32 beside the data;
    process 0's commit takes it into the manifest, so a later read checks it (an altered byte is
    found, not read), and a partition without the record is not committed."""
    loc = str(tmp_path / "c")
    primary, other = CheckpointStore(loc, writer=True), CheckpointStore(loc, writer=False)
    other.write_partition("e", 1, *rows(7)).result()
    other.wait(durable=True)
    primary.write_partition("e", 0, *rows(8))
    primary.add_pending("e", 1)
    primary.commit({"epoch": 1})
    sums = primary.manifest["checksums"]
    assert set(sums) == {"tables/e/0/v1", "tables/e/1/v1"}
    assert (tmp_path / "c/tables/e/1/v1/crc32").read_text() == sums["tables/e/1/v1"]
    assert not (tmp_path / "c/tables/e/0/v1/crc32").exists()  # process 0's own: in its manifest
    other.refresh()
    emb, acc = other.read_partition("e", 1).result()  # every process reads it verified
    np.testing.assert_array_equal(emb, rows(7)[0])
    shard = next(p for p in (tmp_path / "c/tables/e/1/v1/emb").rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(shard.read_bytes())
    data[5] ^= 0x10
    shard.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="tables/e/1/v1: checksum"):
        CheckpointStore(loc).read_partition("e", 1).result()
    other.write_partition("e", 1, *rows(9)).result()
    (tmp_path / "c/tables/e/1/v2/crc32").unlink()
    with pytest.raises(CheckpointError, match=r"tables/e/1/v2: data missing \(no crc32 record"):
        primary.add_pending("e", 1)
    other.close()
    primary.close()


def test_a_reader_whose_version_was_replaced_is_told_to_reopen(tmp_path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    reader = CheckpointStore(loc)
    committed(loc, 2, 3)  # the training run commits on; version 1's data is collected
    with pytest.raises(CheckpointError, match="version 1 was replaced by version 3.*open it again"):
        reader.read_partition("e", 0).result()


def test_an_unwritable_location_is_reported_when_the_writer_opens(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(CheckpointError, match="cannot write checkpoint.lock"):
        CheckpointStore(str(tmp_path / "file" / "ckpt"), writer=True)


def test_partitions_written_before_verification_still_read(tmp_path):
    """A checkpoint from before (no checksums, chunks equal to zero not stored) reads as it did;
    versions a newer writer commits on top of it are verified."""
    loc = str(tmp_path / "c")
    committed(loc, 1)
    path = tmp_path / "c" / "checkpoint.json"
    m = json.loads(path.read_text())
    del m["checksums"], m["verified_since"]
    path.write_text(json.dumps(m))
    shard = next(p for p in (tmp_path / "c" / "tables" / "e" / "0" / "v1" / "acc").rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    shard.unlink()  # as an all-zero accumulator was left unwritten
    store = CheckpointStore(loc, writer=True)
    emb, acc = store.read_partition("e", 0).result()
    np.testing.assert_array_equal(emb, rows(1)[0])
    assert not acc.any()
    store.write_partition("e", 1, *rows(2))
    store.commit({"epoch": 2})
    assert store.manifest["verified_since"] == 2
    np.testing.assert_array_equal(store.read_partition("e", 0).result()[0], rows(1)[0])
    store.close()


def test_a_truncated_shard_is_a_checkpoint_error(tmp_path):
    loc = str(tmp_path / "c")
    committed(loc, 1)
    shard = next(p for p in (tmp_path / "c" / "tables" / "e" / "0" / "v1" / "emb").rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    shard.write_bytes(shard.read_bytes()[:-30])
    with pytest.raises(CheckpointError, match="tables/e/0/v1: damaged .*Digest mismatch"):
        CheckpointStore(loc).read_partition("e", 0).result()
