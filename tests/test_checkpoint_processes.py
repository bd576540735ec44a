"""Real processes on one checkpoint (issue 24 items 1, 2, 4): a second training run on it fails at
once naming the first and takes over once the first is killed; readers opening it while a run
trains on it never break that run; a deleted shard file stops export and resume with a one-line
error instead of reading back zeros."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from jgraph.storage.checkpoint import CheckpointError, CheckpointStore


def command(ckpt: Path, run_dir: Path, epochs: int, parts: int = 3) -> list[str]:
    return [
        sys.executable, "-m", "jgraph.train", "data.toy.num_entities=300", "data.toy.num_edges=20000",
        "data.toy.num_relations=5", "model.dimension=16", f"entities.entity.num_partitions={parts}",
        f"training.num_epochs={epochs}", "training.batch_size=200", "training.batches_per_dispatch=2",
        "negatives.num_batch_negs=20", "negatives.num_uniform_negs=20", "training.progress=false",
        "training.calibration_steps=0", "storage.checkpoint_every_buckets=1", "eval.splits=[]",
        f"storage.checkpoint_dir={ckpt}", f"hydra.run.dir={run_dir}",
    ]


ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def started(proc: subprocess.Popen, run_dir: Path, buckets: int = 1, timeout: float = 120) -> None:
    """Wait until `proc` has trained `buckets` buckets (so it holds the lock and commits)."""
    log = run_dir / "buckets.jsonl"
    deadline = time.time() + timeout
    while not (log.is_file() and log.read_text().count("\n") >= buckets):
        assert proc.poll() is None, proc.stderr.read()
        assert time.time() < deadline, "training did not start"
        time.sleep(0.05)


def read_everything(loc: str) -> int:
    """Open the checkpoint as predict/export do and read every partition; its version."""
    store = CheckpointStore(loc)
    try:
        if not store.exists():
            return 0
        assert store.read_params()
        for etype, parts in store.manifest["tables"].items():
            for part in parts:
                emb, acc = store.read_partition(etype, int(part)).result()
                assert emb.shape[1] == 16 and np.isfinite(emb).all()
        return store.version
    finally:
        store.close()


def test_second_writer_is_refused_then_takes_over_from_a_killed_one(tmp_path):
    ckpt = tmp_path / "ckpt"
    first = subprocess.Popen(command(ckpt, tmp_path / "a", 200), env=ENV, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        started(first, tmp_path / "a")
        second = subprocess.run(command(ckpt, tmp_path / "b", 2), env=ENV, capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2, second.stderr[-2000:]
        last = second.stderr.strip().splitlines()[-1]
        assert f"checkpoint in use by pid {first.pid}" in last and "Traceback" not in second.stderr
        assert first.poll() is None, "the refused run must not disturb the first"
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    target = json.loads((ckpt / "checkpoint.json").read_text())["progress"]["epoch"] + 1
    third = subprocess.run(command(ckpt, tmp_path / "c", target), env=ENV, capture_output=True,
                           text=True, timeout=180)
    assert third.returncode == 0, third.stderr[-2000:]  # the dead owner's lock is taken over
    assert read_everything(str(ckpt)) >= 1
    assert not (ckpt / "checkpoint.lock").exists()


def test_readers_never_break_the_run_writing_the_checkpoint(tmp_path):
    ckpt = tmp_path / "ckpt"
    proc = subprocess.Popen(command(ckpt, tmp_path / "a", 5), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    reads, replaced, versions = 0, 0, set()
    try:
        started(proc, tmp_path / "a")
        while proc.poll() is None:
            try:
                versions.add(read_everything(str(ckpt)))
                reads += 1
            except CheckpointError as e:  # the version opened was committed over mid-read
                assert "open it again" in str(e), e
                replaced += 1
    finally:
        if proc.poll() is None:
            proc.kill()
        err = proc.stderr.read()
        proc.wait()
    assert proc.returncode == 0, err[-2000:]
    assert reads >= 3 and len(versions) >= 2, (reads, replaced, versions)
    final = CheckpointStore(str(ckpt))
    assert final.manifest["progress"]["epoch"] == 5
    final.close()
    assert read_everything(str(ckpt)) >= max(versions)


def test_a_deleted_shard_stops_export_and_resume(tmp_path):
    ckpt = tmp_path / "ckpt"
    done = subprocess.run(command(ckpt, tmp_path / "a", 1, parts=2), env=ENV, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    manifest = json.loads((ckpt / "checkpoint.json").read_text())
    key = manifest["tables"]["entity"]["1"]
    shard = next(p for p in (ckpt / key / "emb").rglob("*") if p.is_file() and p.name != "zarr.json")
    shard.unlink()
    export = subprocess.run([sys.executable, "-m", "jgraph.cli.export", str(ckpt),
                             "--format", "tsv", "--out", str(tmp_path / "out")], env=ENV,
                            capture_output=True, text=True, timeout=120)
    assert export.returncode == 2, (export.returncode, export.stderr[-2000:])
    assert f"{key}: data missing" in export.stderr.strip().splitlines()[-1]
    assert "Traceback" not in export.stderr
    resume = subprocess.run(command(ckpt, tmp_path / "b", 2, parts=2), env=ENV, capture_output=True,
                            text=True, timeout=180)
    assert resume.returncode == 2, resume.stderr[-2000:]
    assert f"{key}: data missing" in resume.stderr


def test_an_unwritable_checkpoint_directory_stops_the_run_before_training(tmp_path):
    (tmp_path / "file").write_text("")
    res = subprocess.run(command(tmp_path / "file" / "ckpt", tmp_path / "a", 2), env=ENV,
                         capture_output=True, text=True, timeout=180)
    assert res.returncode == 2, res.stderr[-2000:]
    last = res.stderr.strip().splitlines()[-1]
    assert "cannot write checkpoint.lock (is the location writable?)" in last
    assert "Traceback" not in res.stderr and not (tmp_path / "a" / "buckets.jsonl").exists()
