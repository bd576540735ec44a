"""Out-of-core training: throughput, hidden vs exposed IO, and peak memory for P = 1, 4, 16.

    python benchmarks/partitions.py                       # 2M nodes, 20M edges, d=100, P = 1 4 16
    python benchmarks/partitions.py --parts 1 16 --nodes 500000 --edges 5000000   # smaller
    python benchmarks/partitions.py --parts 16 --prefetch off    # partitions swapped at the boundary
    python benchmarks/partitions.py --parts 1 16 --dtype bfloat16  # rows stored in bfloat16
    python benchmarks/partitions.py --parts 16 --nodes 4000000 --edges 40000000 --buffers 2 4 8
                                                          # the partition buffer: B slots per type

For each P a prepared dataset (entities cut into P partitions, edges into P^2 buckets, in
TensorStore) is generated bucket by bucket, then one epoch is trained in a child process
(`python -m jgraph.train data.format=prepared ...`) with checkpoints on local disk. Printed per P:
edges/s over the epoch's wall time, IO seconds exposed (the trainer waited) and hidden (background
reads/writes overlapped with training), and the child's peak RSS next to the size of all tables
and of the 2/P of them that are resident. `--prefetch off` runs with storage.prefetch_partitions=false
(no partition read ahead; swaps stream shard by shard: the least memory, IO exposed); `--prefetch on
off` runs both for each P > 1. `--fixed` first measures the fixed overhead: the same run on a graph
of 1/1000 the nodes (runtime, compiled step, IO buffers), so the memory bound
peak RSS <= fixed + 2/P of the tables can be checked. `--buffers 2 4 8` trains each P > 1 with
storage.buffer_partitions = B (B slots per partitioned type) and `--order` (auto: inside_out for
B = 2, the buffer-aware beta order for B > 2), printing partition loads, bytes read and written,
and the memory model's bound (memory.buffer_memory: B slots + in-flight copies) next to the peak
RSS. Rows are appended to benchmarks/results/partitions.csv.
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
from jgraph.memory import IN_FLIGHT, buffer_memory, partition_bytes


def train(root: str, name: str, parts: int, dim: int, out: str, every: int, prefetch: bool = True,
          dtype: str = "float32", buffer: int = 2, order: str = "inside_out") -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "jgraph.train", "data.format=prepared", f"data.root={root}",
           f"data.path={name}", f"data.name={name}", f"entities.entity.num_partitions={parts}",
           "model=dot", "model.reciprocal=false", f"model.dimension={dim}", "model.init_scale=0.1",
           "loss=softmax", "negatives.num_batch_negs=50", "negatives.num_uniform_negs=50",
           "training.num_epochs=1", "training.batch_size=1000", "training.progress=false",
           "eval.splits=[]", f"storage.checkpoint_dir={out}/checkpoint",
           f"storage.checkpoint_every_buckets={every}", f"hydra.run.dir={out}",
           f"storage.prefetch_partitions={str(prefetch).lower()}", f"model.embedding_dtype={dtype}",
           f"storage.buffer_partitions={buffer}", f"storage.bucket_order={order}"]
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
    p.add_argument("--buffers", type=int, nargs="+", default=[2],
                   help="storage.buffer_partitions for P > 1 (several: one row each)")
    p.add_argument("--order", default="auto",
                   help="storage.bucket_order (auto: inside_out for B = 2, beta for B > 2)")
    p.add_argument("--keep-data", action="store_true",
                   help="keep the generated datasets in --workdir (and reuse ones found there)")
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
        if not (args.keep_data and (work / name).is_dir()):
            random_prepared(str(work / name), args.nodes, args.edges, parts)
        prep_s = time.perf_counter() - t0
        runs = [(mode, b) for mode in args.prefetch for b in args.buffers] if parts > 1 else [("on", 2)]
        for mode, buffer in runs:
            order = args.order if args.order != "auto" else ("inside_out" if buffer == 2 else "beta")
            out = str(work / f"run-{name}-{mode}-b{buffer}")
            m, rss = train(str(work), name, parts, args.dim, out, args.every, mode == "on", args.dtype,
                           buffer, order)
            h = m["history"][0]
            eps = h["edges"] / h["wall_seconds"]
            base = base or eps
            hidden = max(h["io_busy_seconds"] - h["io_wait_seconds"], 0.0)
            io_gib = h["io_bytes"] / 2**30
            slots = min(buffer, parts)
            resident = table_mb * slots / parts
            slot_b, copy_b = partition_bytes(-(-args.nodes // parts), args.dim,
                                             2 if args.dtype == "bfloat16" else 4)
            model_mib = buffer_memory(slot_b, copy_b, slots, IN_FLIGHT if mode == "on" else 0) / 2**20
            bound = "" if fixed is None else (
                f"; bound fixed + model = {fixed + model_mib:,.0f} MiB "
                f"{'met' if rss <= fixed + model_mib else 'NOT met'}")
            loads = h.get("partition_loads", 0)
            print(f"P={parts:2d} B={buffer} {order}: {loads} partition loads, "
                  f"{h.get('partition_writes', 0)} writes ({h.get('partition_writes_skipped', 0)} clean "
                  f"skipped), read {h.get('partition_read_bytes', 0) / 2**30:.2f} GiB, written "
                  f"{h.get('partition_write_bytes', 0) / 2**30:.2f} GiB; model (slots + in flight) "
                  f"{model_mib:,.0f} MiB", flush=True)
            print(f"P={parts:2d} prefetch {mode:3s}: {eps:,.0f} edges/s ({eps / base:.0%} of "
                  f"P={args.parts[0]}), epoch {h['wall_seconds']:.1f}s (train {h['train_seconds']:.1f}s); "
                  f"IO {io_gib:.2f} GiB, exposed {h['io_wait_seconds']:.1f}s, hidden {hidden:.1f}s; "
                  f"peak RSS {rss:,.0f} MiB (tables {table_mb:,.0f} MiB, B/P of them {resident:,.0f} MiB"
                  f"{bound}); data prepared in {prep_s:.0f}s", flush=True)
            append_csv(csv_path, ["time", "host", "nodes", "edges", "dim", "partitions", "edges_per_s",
                                  "wall_s", "train_s", "io_gib", "io_exposed_s", "io_hidden_s",
                                  "peak_rss_mib", "tables_mib", "checkpoint_every_buckets",
                                  "prefetch_partitions", "fixed_overhead_mib", "embedding_dtype",
                                  "buffer_partitions", "bucket_order", "partition_loads",
                                  "partition_read_gib", "partition_write_gib", "memory_model_mib"],
                       [time.strftime("%Y-%m-%dT%H:%M:%S"), platform.node(), args.nodes, args.edges,
                        args.dim, parts, round(eps), round(h["wall_seconds"], 1),
                        round(h["train_seconds"], 1), round(io_gib, 2),
                        round(h["io_wait_seconds"], 1), round(hidden, 1), round(rss),
                        round(table_mb), args.every, mode == "on",
                        "" if fixed is None else round(fixed), args.dtype, slots, order, loads,
                        round(h.get("partition_read_bytes", 0) / 2**30, 2),
                        round(h.get("partition_write_bytes", 0) / 2**30, 2), round(model_mib)])
            shutil.rmtree(out, ignore_errors=True)
        if not args.keep_data:
            shutil.rmtree(work / name, ignore_errors=True)


if __name__ == "__main__":
    main()
