"""Distributed training on jax.distributed: two processes train disjoint buckets and agree, and
every partition they wrote is verified on read; under the launcher a dead and a hung process make
the survivor stop on its own, the launcher kills the hung one by name; the job resumes."""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from jgraph.cli.launch import grace_for, launch
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


def _children(rank_of: str) -> dict[int, int]:
    """process id -> pid of this process's children whose command line has `rank_of`=RANK."""
    found = {}
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{d}/cmdline") as f:
                args = f.read().split("\0")
        except (OSError, ValueError, IndexError):
            continue
        if ppid == os.getpid():
            found.update({int(a.split("=")[1]): int(d) for a in args if a.startswith(rank_of + "=")})
    return found


def _running(pid: int) -> bool:
    """Not exited (a zombie, not yet reaped by the launcher, has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_a_dead_and_a_hung_process_stop_the_job_which_then_resumes(tmp_path):
    """Three real processes under `launch`: process 1 is killed and process 2 hangs (SIGSTOP) at
    once. Process 0 stops on its own, saying why, within the launcher's grace (longer than the
    heartbeat); the launcher kills only the hung one when the grace ends, and says so. Starting the
    job again resumes from the last committed round and finishes."""
    heartbeat = 5.0  # 2 s is missed by a process starved on a loaded 2-core machine
    out = io.StringIO()
    codes: list[int] = []
    overrides = [*TINY, "training.num_epochs=50", f"distributed.heartbeat_s={heartbeat}"]
    job = threading.Thread(target=lambda: codes.append(
        launch(3, overrides, str(tmp_path), timeout_s=60, out=out)))
    job.start()
    log1 = tmp_path / "process1" / "buckets.jsonl"
    deadline = time.time() + 180
    while not (log1.is_file() and log1.read_text().count("\n") >= 2):
        assert job.is_alive() and time.time() < deadline, out.getvalue()[-3000:]
        time.sleep(0.05)
    pids = _children("distributed.process_id")
    os.kill(pids[2], signal.SIGSTOP)
    os.kill(pids[1], signal.SIGKILL)
    t0 = time.time()
    while _running(pids[0]):
        assert time.time() - t0 < 120, out.getvalue()[-3000:]
        time.sleep(0.05)
    survivor_s = time.time() - t0
    job.join(timeout=120)
    text, grace = out.getvalue(), f"{grace_for(heartbeat):.0f}s"
    assert codes == [-9] and f"process 1 exited with -9; the others get {grace}" in text
    assert survivor_s < grace_for(heartbeat), (survivor_s, text[-3000:])
    # its own report: the barrier error, or JAX's heartbeat check naming the processes it lost
    said = [ln for ln in text.splitlines() if ln.startswith("[0] ")]
    assert any("not every process reached" in ln or "stopped sending heartbeats" in ln
               for ln in said), text[-3000:]
    assert f"killed process 2 (pid {pids[2]}): still running {grace} after process 1 failed" in text
    assert "killed process 0" not in text and "killed process 1" not in text
    store = CheckpointStore(str(tmp_path / "checkpoint"))
    committed = store.manifest["progress"]
    store.close()
    # restart the job (fewer epochs, so the test stays short): it resumes and finishes
    out = io.StringIO()
    code = launch(3, [*TINY, f"training.num_epochs={committed['epoch'] + 1}"], str(tmp_path),
                  timeout_s=120, out=out)
    assert code == 0, out.getvalue()[-3000:]
    assert "resuming from" in out.getvalue()
    final = CheckpointStore(str(tmp_path / "checkpoint"))
    assert final.manifest["progress"]["epoch"] == committed["epoch"] + 1
    final.close()


@pytest.mark.parametrize("bad", [["distributed.process_id=2"]])
def test_bad_process_id_is_an_error(tmp_path, bad):
    cmd = [sys.executable, "-m", "jgraph.train", *TINY, "distributed.num_processes=2", *bad,
           f"storage.checkpoint_dir={tmp_path / 'c'}", f"hydra.run.dir={tmp_path}"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert res.returncode != 0 and "process_id must be in [0, 2)" in res.stdout + res.stderr
