"""Distributed training on one machine: 1, 2 and 4 local processes on a generated graph, P = 8.

    python benchmarks/distributed.py                         # 1M nodes, 10M edges, d=100
    python benchmarks/distributed.py --procs 1 2 --nodes 200000 --edges 2000000

A prepared dataset (8 partitions, 64 buckets) is generated once; each process count trains one
epoch with `python -m jgraph.cli.launch` (rounds of disjoint buckets, partitions exchanged through
the shared checkpoint, one commit per round). Printed: total wall time of the epoch, buckets per
second per process, edges/s. On a 2-core machine 4 processes share 2 cores, so this shows the
protocol's overhead, not a speed-up. Rows are appended to benchmarks/results/distributed.csv.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import tempfile
import time
from pathlib import Path

from jgraph.cli.launch import launch
from jgraph.data.generate import random_prepared
from jgraph.lab.report import append_csv


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=10_000_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--parts", type=int, default=8)
    p.add_argument("--procs", type=int, nargs="+", default=[1, 2, 4])
    p.add_argument("--workdir", default=None)
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jgraph-distributed-"))
    random_prepared(str(work / "data"), args.nodes, args.edges, args.parts)
    out_csv = Path(__file__).parent / "results" / "distributed.csv"
    for n in args.procs:
        run_dir = work / f"run{n}"
        overrides = ["data.format=prepared", f"data.root={work}", "data.path=data", "data.name=random",
                     f"entities.entity.num_partitions={args.parts}", "model=dot", "model.reciprocal=false",
                     f"model.dimension={args.dim}", "model.init_scale=0.1", "training.num_epochs=1",
                     "training.progress=false", "eval.splits=[]", "training.compute_groups=1"]
        t0 = time.perf_counter()
        with open(work / f"run{n}.log", "w") as log:
            code = launch(n, overrides, str(run_dir), timeout_s=1800, out=log)
        wall = time.perf_counter() - t0
        if code:
            print((work / f"run{n}.log").read_text()[-3000:])
            raise SystemExit(f"{n} processes failed")
        h = json.loads((run_dir / "metrics.json").read_text())["history"][0]
        lines = [json.loads(x) for d in [run_dir, *sorted(run_dir.glob("process*"))]
                 for x in (d / "buckets.jsonl").read_text().splitlines()]
        per_proc = {}
        for b in lines:
            per_proc.setdefault(b["process"], []).append(b)
        epoch_s = h["wall_seconds"]
        bps = [len(v) / epoch_s for v in per_proc.values()]
        print(f"{n} process(es): epoch {epoch_s:.1f}s (launch to exit {wall:.1f}s), {h['edges']:,} edges, "
              f"{h['edges'] / epoch_s:,.0f} edges/s; buckets/s per process: "
              + ", ".join(f"{x:.2f}" for x in bps), flush=True)
        append_csv(out_csv, ["time", "host", "nodes", "edges", "dim", "partitions", "processes",
                             "epoch_s", "wall_s", "edges_per_s", "buckets_per_s_per_process"],
                   [time.strftime("%Y-%m-%dT%H:%M:%S"), platform.node(), args.nodes, args.edges,
                    args.dim, args.parts, n, round(epoch_s, 1), round(wall, 1),
                    round(h["edges"] / epoch_s), " ".join(f"{x:.2f}" for x in bps)])
        shutil.rmtree(run_dir, ignore_errors=True)


if __name__ == "__main__":
    main()
