"""The Freebase86m-shaped pipeline end to end, at any scale: generate (planted structure), import,
train (SIGKILLed once mid-epoch and restarted with the same command), evaluate (sampled, streamed),
export (per partition). One CSV row per stage in benchmarks/results/scale.csv: wall seconds,
edges/s, peak RSS of the stage's process, bytes on disk after it and at its peak, IO seconds
hidden/exposed (training), plus the machine's load average when it started.

    python benchmarks/scale.py --workdir /tmp/scale1 --entities 860541 --edges 3385862 --relations 148
    python benchmarks/scale.py --workdir /tmp/scale --partitions 32 --kill-after-buckets 200 \\
        --delete-raw --export-verify-delete --set storage.buffer_partitions=6 storage.bucket_order=beta
        # the full size (86,054,151 entities, 14,824 relations, 338,586,276 edges) is the default

Stages run as child processes (`--stages` picks some; each later stage reuses the workdir of the
earlier ones). `--export-verify-delete` writes each partition's npy, checks it against the
checkpoint and deletes it before the next (a full-size export beside the checkpoint would not fit
on the disk); otherwise `jgraph export --format npy --per-partition` writes them all.
"""

from __future__ import annotations

import argparse
import csv
import glob
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "benchmarks" / "results" / "scale.csv"
FIELDS = ["time", "host", "label", "stage", "entities", "relations", "edges", "partitions", "dimension",
          "settings", "wall_s", "edges_per_s", "peak_rss_mib", "disk_bytes", "peak_disk_bytes",
          "io_hidden_s", "io_exposed_s", "load_avg", "result"]
STAGES = ("generate", "import", "train", "evaluate", "export")


def du(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_size
            except OSError:
                pass
    return total


class Watch:
    """A child process's peak RSS (VmHWM of it and its descendants, polled) and the workdir's peak
    size (polled every `disk_every` seconds)."""

    def __init__(self, proc: subprocess.Popen, workdir: Path, disk_every: float = 20.0) -> None:
        self.proc, self.workdir, self.peak_rss, self.peak_disk = proc, workdir, 0, du(workdir)
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, args=(disk_every,), daemon=True)
        self._t.start()

    def _hwm(self, pid: int) -> int:
        kids = []
        try:
            with open(f"/proc/{pid}/status") as f:
                hwm = next((int(x.split()[1]) for x in f if x.startswith("VmHWM:")), 0)
            for t in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{t}/children") as f:
                    kids += [int(c) for c in f.read().split()]
        except (OSError, ValueError):
            return 0
        return max([hwm, *(self._hwm(k) for k in kids)])

    def _run(self, disk_every: float) -> None:
        last = time.monotonic()
        while not self._stop.wait(0.25):
            self.peak_rss = max(self.peak_rss, self._hwm(self.proc.pid))
            if time.monotonic() - last > disk_every:
                self.peak_disk, last = max(self.peak_disk, du(self.workdir)), time.monotonic()

    def stop(self) -> None:
        self._stop.set()
        self._t.join()
        self.peak_disk = max(self.peak_disk, du(self.workdir))


def run_stage(cmd: list[str], workdir: Path, log: Path, until=None) -> tuple[int, float, Watch]:
    """Run cmd (stdout+stderr to log); `until()` true: SIGKILL it. (exit code, wall s, watch)."""
    t0 = time.perf_counter()
    with open(log, "a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        w = Watch(proc, workdir)
        while proc.poll() is None:
            if until is not None and until():
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.5)
        w.stop()
    return proc.returncode, time.perf_counter() - t0, w


def py(*args: str) -> list[str]:
    return ["nice", "-n", "5", sys.executable, *args]


def committed_progress(ckpt: Path) -> dict:
    try:
        return json.loads((ckpt / "checkpoint.json").read_text()).get("progress", {})
    except (OSError, ValueError):
        return {}


def bucket_lines(run: Path) -> int:
    try:
        return sum(1 for _ in open(run / "buckets.jsonl"))
    except OSError:
        return 0


def export_verify_delete(run: str, out: str) -> dict:
    """Every partition exported (jgraph.cli.export.write_partition), read back and compared with
    the checkpoint's effective rows, then deleted: the export's speed at a fraction of its disk."""
    import numpy as np

    from jgraph.cli.export import effective_rows, write_partition
    from jgraph.trained import open_run

    r = open_run(run)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    written, checked, t_write = 0, 0, 0.0
    try:
        for t, tp in enumerate(r.layout.types):
            for p in range(tp.num_partitions):
                t0 = time.perf_counter()
                rows_file, ids_file = write_partition(r, t, p, dest)
                t_write += time.perf_counter() - t0
                rows = np.load(dest / rows_file, mmap_mode="r")
                ids = np.load(dest / ids_file)
                k = np.random.default_rng(p).integers(len(ids), size=min(1000, len(ids)))
                want = effective_rows(r, t, r.partition(t, p))[k] if p % 8 == 0 else None
                assert rows.shape == (tp.sizes[p], r.model.dimension) and np.array_equal(ids, tp.members[p])
                if want is not None:  # every 8th partition read twice and compared row by row
                    assert np.array_equal(np.asarray(rows[k]), want)
                    checked += 1
                written += (dest / rows_file).stat().st_size + (dest / ids_file).stat().st_size
                del rows
                (dest / rows_file).unlink()
                (dest / ids_file).unlink()
    finally:
        r.close()
    return {"bytes_written": written, "write_seconds": t_write, "partitions_compared": checked}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workdir", required=True)
    p.add_argument("--entities", type=int, default=86_054_151)
    p.add_argument("--relations", type=int, default=14_824)
    p.add_argument("--edges", type=int, default=338_586_276)
    p.add_argument("--partitions", type=int, default=1)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--stages", nargs="+", default=list(STAGES), choices=STAGES)
    p.add_argument("--kill-after-buckets", type=int, default=0,
                   help="SIGKILL training once this many buckets are done and one commit was made mid-epoch, "
                   "then run the same command again (0: no kill)")
    p.add_argument("--stop-after-minutes", type=float, default=0.0,
                   help="SIGKILL the (resumed) training after this long: the figures then come from "
                   "buckets.jsonl and the later stages use the last commit (0: train to the end)")
    p.add_argument("--set", nargs="*", default=[], help="more training overrides (key=value)")
    p.add_argument("--eval-edges", type=int, default=20_000)
    p.add_argument("--test-fraction", type=float, default=0.0003)
    p.add_argument("--delete-raw", action="store_true", help="delete the generated Parquet after import")
    p.add_argument("--export-verify-delete", action="store_true")
    p.add_argument("--label", default="")
    p.add_argument("--csv", default=str(CSV))
    p.add_argument("--export-job", nargs=2, metavar=("RUN", "OUT"), help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    if a.export_job:
        print(json.dumps(export_verify_delete(*a.export_job)))
        return 0
    work = Path(a.workdir)
    work.mkdir(parents=True, exist_ok=True)
    raw, data, run, exp = work / "raw", work / "data", work / "run", work / "export"
    log = work / "scale.log"
    settings = " ".join(a.set)
    label = a.label or f"{a.entities // 1000}k-P{a.partitions}"

    def row(stage, wall, w, edges=None, **extra) -> dict:
        r = {"time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"), "host": os.uname().nodename,
             "label": label, "stage": stage, "entities": a.entities, "relations": a.relations,
             "edges": a.edges, "partitions": a.partitions, "dimension": 100, "settings": settings,
             "wall_s": f"{wall:.1f}", "edges_per_s": f"{edges / wall:.0f}" if edges else "",
             "peak_rss_mib": f"{w.peak_rss / 1024:.0f}", "disk_bytes": du(work),
             "peak_disk_bytes": w.peak_disk, "load_avg": f"{load0:.1f}", **extra}
        new = not Path(a.csv).exists()
        with open(a.csv, "a", newline="") as f:
            wr = csv.DictWriter(f, FIELDS)
            if new:
                wr.writeheader()
            wr.writerow({k: r.get(k, "") for k in FIELDS})
        print(json.dumps(r), flush=True)
        return r

    def check(rc: int, stage: str) -> None:
        if rc != 0:
            sys.exit(f"{stage} failed (exit {rc}): see {log}")

    if "generate" in a.stages:
        load0 = os.getloadavg()[0]
        rc, wall, w = run_stage(py("-m", "jgraph.data.synthetic", str(raw), "--entities", str(a.entities),
                                   "--relations", str(a.relations), "--edges", str(a.edges),
                                   "--ceiling-edges", str(a.eval_edges)), work, log)
        check(rc, "generate")
        planted = json.loads((raw / "planted.json").read_text())
        res = {f"ceiling_{x['batch_negs']}b{x['uniform_negs']}u": round(x["ceiling_mrr"], 4)
               for x in planted["protocols"]}
        res.update({f"chance_{x['batch_negs']}b{x['uniform_negs']}u": round(x["chance_mrr"], 4)
                    for x in planted["protocols"]})
        row("generate", planted["seconds"], w, a.edges, result=json.dumps(res))
    if "import" in a.stages:
        load0 = os.getloadavg()[0]
        shutil.rmtree(data, ignore_errors=True)
        rc, wall, w = run_stage(py("-m", "jgraph", "import", str(data / "g"), "--train",
                                   *sorted(glob.glob(str(raw / "part-*.parquet"))), "--columns", "lhs=lhs",
                                   "rel=rel", "rhs=rhs", "--partitions", str(a.partitions),
                                   "--valid-fraction", "0.0001", "--test-fraction", str(a.test_fraction),
                                   "--dictionary-load", "0.75"), work, log)
        check(rc, "import")
        meta = json.loads((data / "g" / "dataset.json").read_text())
        row("import", wall, w, a.edges, result=json.dumps({"entities": meta.get("entity_counts"),
                                                            "splits": {k: v.get("count") for k, v in
                                                                       meta.get("splits", {}).items()}}))
        if a.delete_raw:
            shutil.rmtree(raw)
    train_cmd = py("-m", "jgraph.train", "+experiment=freebase", "data.format=prepared", f"data.root={data}",
                   "data.path=g", "data.name=g", f"entities.entity.num_partitions={a.partitions}",
                   f"training.num_epochs={a.epochs}", "eval.splits=[]", "training.progress=false",
                   f"storage.checkpoint_dir={run / 'checkpoint'}", f"hydra.run.dir={run}", *a.set)
    if "train" in a.stages:
        shutil.rmtree(run, ignore_errors=True)
        load0 = os.getloadavg()[0]
        if a.kill_after_buckets:
            def done_and_committed() -> bool:
                prog = committed_progress(run / "checkpoint")
                return bucket_lines(run) >= a.kill_after_buckets and prog.get("bucket", 0) > 0
            rc, wall, w = run_stage(train_cmd, work, log, until=done_and_committed)
            before = committed_progress(run / "checkpoint")
            row("train-killed", wall, w, result=json.dumps({"exit": rc, "committed_progress": before}))
            load0 = os.getloadavg()[0]
        n0 = bucket_lines(run)
        t_stop = time.monotonic() + 60 * a.stop_after_minutes
        rc, wall, w = run_stage(train_cmd, work, log, until=(lambda: time.monotonic() > t_stop)
                                if a.stop_after_minutes else None)
        if rc != 0 and a.stop_after_minutes:  # stopped: the buckets it trained give the figures
            bl = [json.loads(x) for x in open(run / "buckets.jsonl").read().splitlines()[n0:] if x.strip()]
            edges = sum(b["edges"] for b in bl)
            train_s, wait_s = sum(b["train_seconds"] for b in bl), sum(b["io_wait_seconds"] for b in bl)
            res = {"buckets": len(bl), "edges": edges, "train_seconds": round(train_s, 1),
                   "io_wait_seconds": round(wait_s, 1), "loads": sum(b.get("loads", 0) for b in bl),
                   "evictions": sum(b.get("evictions", 0) for b in bl),
                   "io_bytes": sum(b.get("io_bytes", 0) for b in bl),
                   "loss_first_last_10": [round(sum(b["loss"] for b in bl[:10]) / max(len(bl[:10]), 1), 4),
                                          round(sum(b["loss"] for b in bl[-10:]) / max(len(bl[-10:]), 1), 4)],
                   "committed_progress": committed_progress(run / "checkpoint"),
                   "edges_per_s_of_stage_wall": round(edges / wall)}
            if a.kill_after_buckets:
                res["resumed_from"] = before
            row("train-stopped", wall, w, edges, io_exposed_s=f"{wait_s:.1f}", result=json.dumps(res),
                edges_per_s=f"{edges / max(train_s + wait_s, 1e-9):.0f}")  # per second of buckets
            a.stages = [s for s in a.stages if s != "train"]
        else:
            check(rc, "train")
    if "train" in a.stages:
        m = json.loads((run / "metrics.json").read_text())
        hist = m["history"]
        edges = sum(h["edges"] for h in hist)
        train_s = sum(h["train_seconds"] for h in hist)
        hidden = sum(h.get("io_hidden_seconds", max(h.get("io_busy_seconds", 0) - h.get("io_wait_seconds", 0),
                                                     0)) for h in hist)
        exposed = sum(h.get("io_wait_seconds", 0) for h in hist)
        keys = ("partition_loads", "partition_writes", "partition_read_bytes", "partition_write_bytes")
        res = {"epochs": len(hist), "loss": [round(h["loss"], 4) for h in hist],
               "train_seconds": round(train_s, 1),
               "epoch_edges_per_s": [round(h["edges_per_second"]) for h in hist],
               **{k: sum(h.get(k, 0) for h in hist) for k in keys}}
        if a.kill_after_buckets:
            res["resumed_from"] = before
        row("train-resumed" if a.kill_after_buckets else "train", wall, w, edges,
            io_hidden_s=f"{hidden:.1f}", io_exposed_s=f"{exposed:.1f}", result=json.dumps(res))
    if "evaluate" in a.stages:
        for name, negs in (("batch1000+uniform1000", []),
                           ("uniform1000", ["eval.num_batch_negs=0", "eval.num_uniform_negs=1000"])):
            load0 = os.getloadavg()[0]
            out = work / f"eval_{name}.json"
            rc, wall, w = run_stage(py("-m", "jgraph", "evaluate", str(run), "--split", "test", "--protocol",
                                       "sampled", "--max-edges", str(a.eval_edges), "--out", str(out),
                                       *(["--set", *negs] if negs else [])), work, log)
            check(rc, "evaluate")
            avg = json.loads(out.read_text())["eval"]["test"]["sampled"]["avg"]
            row(f"evaluate-{name}", wall, w, a.eval_edges, result=json.dumps(
                {"mrr": round(avg["mrr"], 4), "hits@10": round(avg.get("hits@10", 0), 4),
                 "count": avg["count"]}))
    if "export" in a.stages:
        load0 = os.getloadavg()[0]
        shutil.rmtree(exp, ignore_errors=True)
        if a.export_verify_delete:
            cmd = py(str(Path(__file__).resolve()), "--workdir", str(work), "--export-job", str(run),
                     str(exp))
        else:
            cmd = py("-m", "jgraph", "export", str(run), "--format", "npy", "--per-partition", "--out",
                     str(exp))
        rc, wall, w = run_stage(cmd, work, log)
        check(rc, "export")
        res = {"bytes_on_disk": du(exp)}
        if a.export_verify_delete:
            res = json.loads(open(log).read().strip().splitlines()[-1])
        row("export", wall, w, a.entities, result=json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
