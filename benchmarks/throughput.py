"""Training throughput on a generated graph (issue: core engine; PBG figures in the docstring).

    python benchmarks/throughput.py                      # d=100 dot softmax, 1M nodes, 10M edges
    python benchmarks/throughput.py --dim 400
    python benchmarks/throughput.py --operator complex_diagonal --dim 100
    python benchmarks/throughput.py --all                # the three configurations above
    python benchmarks/throughput.py --dtype bfloat16     # entity rows stored in bfloat16

One epoch over uniformly random edges (1 relation, 1 partition), batch 1000, chunks of 50 with 50
batch + 50 uniform negatives per side, softmax loss. Prints edges/s of the epoch (compile excluded:
the first dispatch is timed separately), and appends a row to benchmarks/results/throughput.csv.
PyTorch-BigGraph on the same 2-core machine: 166k edges/s (d=100, dot, softmax), 158k (ComplEx),
66k (d=400).
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

from jgraph.assembly import load_plugins
from jgraph.config import TrainConfig
from jgraph.data.generate import random_dataset
from jgraph.lab.report import append_csv
from jgraph.memory import peak_rss_mib, reset_peak_rss
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.trainer import Trainer


def measure(args, dim: int, operator: str, comparator: str, loss: str) -> dict:
    cfg = TrainConfig()
    cfg.model.dimension, cfg.model.operator, cfg.model.comparator = dim, operator, comparator
    cfg.loss.name = loss
    cfg.negatives.num_batch_negs, cfg.negatives.num_uniform_negs = 50, args.uniform
    cfg.training.batch_size, cfg.training.num_epochs = args.batch, 1
    cfg.training.batches_per_dispatch = args.dispatch
    cfg.training.rng_impl = args.rng
    cfg.model.embedding_dtype = args.dtype
    cfg.storage.save = False
    ds = random_dataset(args.nodes, args.edges)
    trainer = Trainer(cfg, ds, CheckpointStore("memory://"))
    compile_s = trainer.compile()  # a call that runs no batch: the epoch below is steady state
    t0 = time.perf_counter()
    stats = trainer.train_pass(0, 0, 0)
    wall = time.perf_counter() - t0
    trainer.close()
    return {"edges_per_s": stats["count"] / stats["train_seconds"], "wall_s": wall, "compile_s": compile_s,
            "edges": int(stats["count"]), "loss": stats["loss"] / max(stats["count"], 1)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=10_000_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--operator", default="none")
    p.add_argument("--comparator", default="dot")
    p.add_argument("--loss", default="softmax")
    p.add_argument("--batch", type=int, default=1000)
    p.add_argument("--uniform", type=int, default=50)
    p.add_argument("--dispatch", type=int, default=64)
    p.add_argument("--rng", default="threefry")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"],
                   help="model.embedding_dtype: how entity rows are stored")
    p.add_argument("--all", action="store_true", help="d=100 dot, d=400 dot, d=100 ComplEx")
    args = p.parse_args()
    load_plugins(["models"])
    runs = ([(100, "none"), (400, "none"), (100, "complex_diagonal")] if args.all
            else [(args.dim, args.operator)])
    out = Path(__file__).parent / "results" / "throughput.csv"
    for dim, op in runs:
        reset_peak_rss()  # each configuration's own peak
        r = measure(args, dim, op, args.comparator, args.loss)
        rss = peak_rss_mib()
        print(f"d={dim} operator={op} comparator={args.comparator} loss={args.loss} {args.dtype}: "
              f"{r['edges_per_s']:,.0f} edges/s in training steps, {r['edges'] / r['wall_s']:,.0f} over the "
              f"epoch's wall time, which adds building its batches ({r['edges']:,} edges, "
              f"epoch wall {r['wall_s']:.1f}s, "
              f"compile {r['compile_s']:.1f}s, peak RSS {rss:,.0f} MiB)", flush=True)
        append_csv(out, ["time", "host", "nodes", "edges", "dim", "operator", "comparator", "loss",
                         "batch", "uniform", "edges_per_s", "wall_s", "compile_s", "peak_rss_mib",
                         "embedding_dtype"],
                   [time.strftime("%Y-%m-%dT%H:%M:%S"), platform.node(), args.nodes, args.edges, dim,
                    op, args.comparator, args.loss, args.batch, args.uniform,
                    round(r["edges_per_s"]), round(r["wall_s"], 2), round(r["compile_s"], 2), round(rss),
                    args.dtype])


if __name__ == "__main__":
    sys.exit(main())
