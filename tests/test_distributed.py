"""Distributed training on jax.distributed: two processes train disjoint buckets and agree; a dead
process makes the other stop with a clear error within the timeout; the job then resumes."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from jgraph.cli.launch import free_port, launch
from jgraph.storage.checkpoint import CheckpointError, CheckpointStore

TINY = ["data.toy.num_entities=400", "data.toy.num_edges=20000", "data.toy.num_relations=5",
        "model.dimension=16", "entities.entity.num_partitions=4", "training.batch_size=200",
        "training.batches_per_dispatch=2", "negatives.num_batch_negs=20", "negatives.num_uniform_negs=20",
        "training.progress=false", "eval.batch_size=128"]

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    """A 2-epoch job of 2 processes (launched once for the tests below): (run dir, output)."""
    tmp_path, out = tmp_path_factory.mktemp("two"), io.StringIO()
    code = launch(2, [*TINY, "training.num_epochs=2"], str(tmp_path), timeout_s=120, out=out)
    assert code == 0, out.getvalue()[-3000:]
    return tmp_path, out.getvalue()


def test_two_processes_end_to_end(two_processes):
    tmp_path, _ = two_processes
    m = json.loads((tmp_path / "metrics.json").read_text())
    assert m["processes"] == 2 and len(m["history"]) == 2
    assert m["history"][0]["edges"] == m["data"]["edges"]["train"]  # every edge trained once per epoch
    assert m["eval"]["test"]["filtered"]["avg"]["mrr"] > 2 * m["chance_mrr"]
    buckets = [json.loads(line) for d in (tmp_path, tmp_path / "process1")
               for line in (d / "buckets.jsonl").read_text().splitlines()]
    assert {b["process"] for b in buckets} == {0, 1}, "both processes trained buckets"
    # buckets trained in the same round never share a partition
    by_round: dict = {}
    for b in buckets:
        by_round.setdefault((b["epoch"], b["index"]), []).append({b["lhs"], b["rhs"]})
    sizes = [len(parts) for parts in by_round.values()]
    assert max(sizes) == 2, sizes
    # 4 partitions, 2 processes: most rounds train two buckets at once (a schedule that ran one
    # bucket a round would pass the check below vacuously)
    assert sizes.count(2) >= 8, sizes
    for parts in by_round.values():
        if len(parts) == 2:
            assert not (parts[0] & parts[1])
    assert sum(1 for b in buckets if b["epoch"] == 1) == 16
    store = CheckpointStore(str(tmp_path / "checkpoint"))
    assert store.manifest["progress"]["epoch"] == 2 and store.manifest["processes"] == 2
    store.close()


def test_partitions_written_by_process_1_are_verified(two_processes, tmp_path):
    """Every partition of the manifest has its writer's CRC-32, process 1's too (taken from the
    record it put beside the data); a byte changed in a shard process 1 wrote is found on read."""
    shutil.copytree(two_processes[0] / "checkpoint", tmp_path / "c")
    manifest = json.loads((tmp_path / "c" / "checkpoint.json").read_text())
    keys = {k: (t, int(p)) for t, parts in manifest["tables"].items() for p, k in parts.items()}
    assert set(manifest["checksums"]) == set(keys)
    by_1 = sorted(k for k in keys if (tmp_path / "c" / k / "crc32").is_file())
    assert by_1 and len(by_1) < len(keys), by_1  # some written by process 1, some by process 0
    key = by_1[0]
    assert (tmp_path / "c" / key / "crc32").read_text() == manifest["checksums"][key]
    shard = next(p for p in (tmp_path / "c" / key / "emb").rglob("*")
                 if p.is_file() and p.name != "zarr.json")
    data = bytearray(shard.read_bytes())
    data[7] ^= 0x04  # a bit of a row: TensorStore's own checksum covers only the shard index
    shard.write_bytes(bytes(data))
    store = CheckpointStore(str(tmp_path / "c"))
    with pytest.raises(CheckpointError, match=f"{key}: checksum"):
        store.read_partition(*keys[key]).result()
    store.close()


def _start(rank: int, n: int, port: int, tmp_path, extra: list[str]) -> subprocess.Popen:
    run_dir = tmp_path if rank == 0 else tmp_path / f"process{rank}"
    cmd = [sys.executable, "-m", "jgraph.train", *TINY, *extra, f"distributed.num_processes={n}",
           f"distributed.process_id={rank}", f"distributed.coordinator=localhost:{port}",
           f"storage.checkpoint_dir={tmp_path / 'checkpoint'}", f"hydra.run.dir={run_dir}"]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def test_dead_process_stops_the_other_and_the_job_resumes(tmp_path, capsys):
    extra = ["training.num_epochs=30", "distributed.timeout_s=15", "distributed.heartbeat_s=5"]
    port = free_port()
    procs = [_start(r, 2, port, tmp_path, extra) for r in range(2)]
    log1 = tmp_path / "process1" / "buckets.jsonl"
    deadline = time.time() + 120
    while not (log1.is_file() and log1.read_text().count("\n") >= 3):
        assert all(p.poll() is None for p in procs), procs[0].communicate()[0][-2000:]
        assert time.time() < deadline, "training did not start"
        time.sleep(0.05)
    procs[1].send_signal(signal.SIGKILL)
    t0 = time.time()
    out, _ = procs[0].communicate(timeout=120)
    waited = time.time() - t0
    assert procs[0].returncode != 0, "the surviving process must fail, not hang or succeed"
    assert waited < 60, f"took {waited:.0f}s to notice"
    assert "ClusterError" in out or "heartbeat" in out.lower() or "barrier" in out.lower(), out[-2000:]
    store = CheckpointStore(str(tmp_path / "checkpoint"))
    committed = store.manifest["progress"]
    store.close()
    # restart the job (fewer epochs, so the test stays short): it resumes and finishes
    code = launch(2, [*TINY, f"training.num_epochs={committed['epoch'] + 1}"], str(tmp_path),
                  timeout_s=120)
    out2 = capsys.readouterr().out
    assert code == 0, out2[-3000:]
    assert "resuming from" in out2
    final = CheckpointStore(str(tmp_path / "checkpoint"))
    assert final.manifest["progress"]["epoch"] == committed["epoch"] + 1
    final.close()


@pytest.mark.parametrize("bad", [["distributed.process_id=2"]])
def test_bad_process_id_is_an_error(tmp_path, bad):
    cmd = [sys.executable, "-m", "jgraph.train", *TINY, "distributed.num_processes=2", *bad,
           f"storage.checkpoint_dir={tmp_path / 'c'}", f"hydra.run.dir={tmp_path}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "process_id must be in [0, 2)" in res.stdout + res.stderr
