"""Out-of-core training: throughput, hidden vs exposed IO, and peak memory for P = 1, 4, 16.

    python benchmarks/partitions.py                       # 2M nodes, 20M edges, d=100, P = 1 4 16
    python benchmarks/partitions.py --parts 1 16 --nodes 500000 --edges 5000000   # smaller
    python benchmarks/partitions.py --parts 16 --prefetch off    # partitions swapped at the boundary
    python benchmarks/partitions.py --parts 1 16 --dtype bfloat16  # rows stored in bfloat16

For each P a prepared dataset (entities cut into P partitions, edges into P^2 buckets, in
TensorStore) is generated bucket by bucket, then one epoch is trained in a child process
(`python -m jgraph.train data.format=prepared ...`) with checkpoints on local disk. Printed per P:
edges/s over the epoch's wall time, IO seconds exposed (the trainer waited) and hidden (background
reads/writes overlapped with training), and the child's peak RSS next to the size of all tables
and of the 2/P of them that are resident. `--prefetch off` runs with storage.prefetch_partitions=false
(no partition read ahead; swaps stream shard by shard: the least memory, IO exposed); `--prefetch on
off` runs both for each P > 1. `--fixed` first measures the fixed overhead: the same run on a graph
of 1/1000 the nodes (runtime, compiled step, IO buffers), so the memory bound
peak RSS <= fixed + 2/P of the tables can be checked. Rows are appended to
benchmarks/results/partitions.csv.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from jgraph.data.generate import random_prepared
from jgraph.lab.report import append_csv


def train(root: str, name: str, parts: int, dim: int, out: str, every: int, prefetch: bool = True,
          dtype: str = "float32") -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "jgraph.train", "data.format=prepared", f"data.root={root}",
           f"data.path={name}", f"data.name={name}", f"entities.entity.num_partitions={parts}",
           "model=dot", "model.reciprocal=false", f"model.dimension={dim}", "model.init_scale=0.1",
           "loss=softmax", "negatives.num_batch_negs=50", "negatives.num_uniform_negs=50",
           "training.num_epochs=1", "training.batch_size=1000", "training.progress=false",
           "eval.splits=[]", f"storage.checkpoint_dir={out}/checkpoint",
           f"storage.checkpoint_every_buckets={every}", f"hydra.run.dir={out}",
           f"storage.prefetch_partitions={str(prefetch).lower()}", f"model.embedding_dtype={dtype}"]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode:
        print(proc.stdout[-3000:])
        raise SystemExit(f"training with P={parts} failed")
    m = json.loads((Path(out) / "metrics.json").read_text())
    return m, m["peak_rss_mib"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=2_000_000)
    p.add_argument("--edges", type=int, default=20_000_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--parts", type=int, nargs="+", default=[1, 4, 16])
    p.add_argument("--every", type=int, default=0, help="storage.checkpoint_every_buckets (0: time-based)")
    p.add_argument("--workdir", default=None, help="where data and checkpoints go (default: a temp dir)")
    p.add_argument("--prefetch", nargs="+", choices=["on", "off"], default=["on"],
                   help="storage.prefetch_partitions for P > 1 (both: one row each)")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="model.embedding_dtype (bfloat16: half the bytes per row)")
    p.add_argument("--fixed", action="store_true",
                   help="first measure the fixed overhead (the largest P on nodes/1000)")
    args = p.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="jgraph-partitions-"))
    csv_path = Path(__file__).parent / "results" / "partitions.csv"
    table_mb = args.nodes * (args.dim * (2 if args.dtype == "bfloat16" else 4) + 4) / 2**20
    fixed = None
    if args.fixed:
        parts = max(args.parts)
        random_prepared(str(work / "fixed"), max(args.nodes // 1000, 16 * parts), args.edges // 10, parts)
        _, fixed = train(str(work), "fixed", parts, args.dim, str(work / "run-fixed"), args.every,
                         "on" in args.prefetch, args.dtype)
        print(f"fixed overhead: peak RSS {fixed:,.0f} MiB with P={parts} on "
              f"{max(args.nodes // 1000, 16 * parts):,} nodes", flush=True)
        shutil.rmtree(work / "fixed", ignore_errors=True)
    base = None
    for parts in args.parts:
        name = f"p{parts}"
        t0 = time.perf_counter()
        random_prepared(str(work / name), args.nodes, args.edges, parts)
        prep_s = time.perf_counter() - t0
        for mode in args.prefetch if parts > 1 else ["on"]:
            out = str(work / f"run-{name}-{mode}")
            m, rss = train(str(work), name, parts, args.dim, out, args.every, mode == "on", args.dtype)
            h = m["history"][0]
            eps = h["edges"] / h["wall_seconds"]
            base = base or eps
            hidden = max(h["io_busy_seconds"] - h["io_wait_seconds"], 0.0)
            io_gib = h["io_bytes"] / 2**30
            resident = table_mb * min(2, parts) / parts
            bound = "" if fixed is None else (
                f"; bound fixed + 2/P = {fixed + resident:,.0f} MiB "
                f"{'met' if rss <= fixed + resident else 'NOT met'}")
            print(f"P={parts:2d} prefetch {mode:3s}: {eps:,.0f} edges/s ({eps / base:.0%} of "
                  f"P={args.parts[0]}), epoch {h['wall_seconds']:.1f}s (train {h['train_seconds']:.1f}s); "
                  f"IO {io_gib:.2f} GiB, exposed {h['io_wait_seconds']:.1f}s, hidden {hidden:.1f}s; "
                  f"peak RSS {rss:,.0f} MiB (tables {table_mb:,.0f} MiB, 2/P of them {resident:,.0f} MiB"
                  f"{bound}); data prepared in {prep_s:.0f}s", flush=True)
            append_csv(csv_path, ["time", "host", "nodes", "edges", "dim", "partitions", "edges_per_s",
                                  "wall_s", "train_s", "io_gib", "io_exposed_s", "io_hidden_s",
                                  "peak_rss_mib", "tables_mib", "checkpoint_every_buckets",
                                  "prefetch_partitions", "fixed_overhead_mib", "embedding_dtype"],
                       [time.strftime("%Y-%m-%dT%H:%M:%S"), platform.node(), args.nodes, args.edges,
                        args.dim, parts, round(eps), round(h["wall_seconds"], 1),
                        round(h["train_seconds"], 1), round(io_gib, 2),
                        round(h["io_wait_seconds"], 1), round(hidden, 1), round(rss),
                        round(table_mb), args.every, mode == "on",
                        "" if fixed is None else round(fixed), args.dtype])
            shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(work / name, ignore_errors=True)


if __name__ == "__main__":
    main()
