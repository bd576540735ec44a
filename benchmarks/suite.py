"""The speed suite: PyTorch-BigGraph's table, side by side, with the roofline.

    python benchmarks/suite.py                 # every row (about 10 minutes on 2 cores)
    python benchmarks/suite.py --rows d100-dot-softmax d400-dot-softmax --edges 2000000
    python benchmarks/suite.py --pbg-python /path/to/pbg-venv/bin/python   # PBG beside each row
    python benchmarks/suite.py --compute-dtype bfloat16   # negatives scored with bfloat16 products
    python benchmarks/suite.py --rows d100-dot-softmax --batch-size 100000   # an accelerator's batch

Each row trains one epoch of a generated graph (1M nodes, 10M edges, one relation, batch 1000,
chunks of 50: 50 batch + 50 uniform negatives per side unless the row says otherwise) and prints
edges/s over the epoch's wall time and over its training steps alone, PBG's figure on the same
2-core machine and the ratio, the share of the compute roofline, compile time and peak RSS. This VM's
speed drifts by up to 2x over minutes, so a figure from another hour says little: with
--pbg-python, PBG (benchmarks/pbg_side.py, in its own venv) trains the same graph right after each
row, and the ratios compare wall with wall and training steps with PBG's own per-bucket compute
time. Roofline: a scoring matmul is 2 FLOPs per multiply-add; each positive
is scored against N negatives per side, forward and backward (x3), so about 12 * N * D FLOPs per
edge; the peak is measured here with a large fp32 matmul. Row bound: the step also reads and
writes every table row it touches (each edge's two rows, and its share of the chunk's uniform
negatives: 2 + 2 * U / 50 rows per edge); the suite times a jitted loop that does only that (gather
4000 random rows of a table of --nodes rows, for partitioned rows too; write them back, donated)
and reports the row's edges/s as a share of that bound, the memory side of the roofline (peak RSS
is each row's own). Rows are appended to benchmarks/results/suite.csv (--out).
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.assembly import load_plugins
from jgraph.config import TrainConfig
from jgraph.core.model import Batch
from jgraph.data.generate import random_dataset
from jgraph.lab.report import append_csv
from jgraph.memory import peak_rss_mib, reset_peak_rss
from jgraph.plan.partition import Layout
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.trainer import Trainer

ROWS = {  # name: (dimension, operator, loss, uniform negatives, partitions, PBG edges/s or None)
    "d100-dot-softmax": (100, "none", "softmax", 50, 1, 166_000),
    "d100-dot-ranking": (100, "none", "ranking", 50, 1, 200_000),
    "d100-complex-softmax": (100, "complex_diagonal", "softmax", 50, 1, 158_000),
    "d100-dot-softmax-p4": (100, "none", "softmax", 50, 4, 252_000),
    "d400-dot-softmax": (400, "none", "softmax", 50, 1, 66_000),
    "d400-complex-softmax": (400, "complex_diagonal", "softmax", 50, 1, 59_000),
    "d200-dot-softmax": (200, "none", "softmax", 50, 1, None),
    "d100-dot-softmax-u1000": (100, "none", "softmax", 1000, 1, None),
    "d100-dot-softmax-p16": (100, "none", "softmax", 50, 16, None),
}

CSV_HEADER = ["time", "host", "backend", "row", "nodes", "edges", "edges_per_s", "pbg_edges_per_s",
              "roofline_share", "peak_gflops", "compile_s", "peak_rss_mib", "steps_edges_per_s",
              "pbg_side_wall_edges_per_s", "pbg_side_compute_edges_per_s", "compute_dtype",
              "embedding_dtype", "batch_size", "row_ns", "row_bound_share"]


def peak_gflops() -> float:
    a = jnp.asarray(np.random.default_rng(0).standard_normal((2048, 2048)), jnp.float32)
    f = jax.jit(lambda a: a @ a)
    f(a).block_until_ready()
    t = time.perf_counter()
    for _ in range(5):
        f(a).block_until_ready()
    return 5 * 2 * 2048**3 / (time.perf_counter() - t) / 1e9


def row_traffic_ns(nodes: int, dim: int, rows: int = 4000, iters: int = 100) -> float:
    """Nanoseconds to gather one random row of a [nodes + 1, dim] float32 table and write it back:
    a jitted loop of `iters` x (gather `rows` random rows, scale, scatter them back) on a donated
    table, as a step touches its rows (best of three). The step's memory side, without its math."""
    table = jnp.ones((nodes + 1, dim), jnp.float32)
    ids = jnp.asarray(np.random.default_rng(1).integers(0, nodes, (iters, rows)), jnp.int32)

    @partial(jax.jit, donate_argnums=0)
    def loop(table, ids):
        def body(k, table):
            r = table.at[ids[k]].get(mode="promise_in_bounds")
            return table.at[ids[k]].set(r * 0.999, mode="promise_in_bounds")
        return jax.lax.fori_loop(0, iters, body, table)

    table = loop(table, ids).block_until_ready()
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        table = loop(table, ids).block_until_ready()
        best = min(best, time.perf_counter() - t)
    return best / (iters * rows) * 1e9


def row_traffic_ns_apart(nodes: int, dim: int) -> float:
    """row_traffic_ns in a child process, so its table leaves the suite's peak RSS alone."""
    code = (f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"from suite import row_traffic_ns; print(row_traffic_ns({nodes}, {dim}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def rows_per_edge(uniform: int, chunk: int = 50) -> float:
    """Table rows a training edge touches: its two entities and, per side, its share of the
    chunk's `uniform` negatives (batch negatives reuse the chunk's own rows)."""
    return 2 + 2 * uniform / chunk


def row_config(dim: int, op: str, loss: str, uniform: int, parts: int,
               compute_dtype: str = "float32", embedding_dtype: str = "float32",
               batch_size: int = 1000) -> TrainConfig:
    """A suite row's training config: dot comparator, batch 1000 (or `batch_size`), chunks of 50
    (50 batch negatives), `uniform` uniform negatives, no self-negative (as PBG), one epoch,
    nothing saved."""
    cfg = TrainConfig()
    cfg.model.dimension, cfg.model.operator, cfg.model.comparator = dim, op, "dot"
    cfg.model.compute_dtype, cfg.model.embedding_dtype = compute_dtype, embedding_dtype
    cfg.loss.name = loss
    cfg.negatives.num_batch_negs, cfg.negatives.num_uniform_negs = 50, uniform
    cfg.negatives.self_negative = False  # PBG has no such negative: the same work on both sides
    cfg.training.batch_size, cfg.training.num_epochs = batch_size, 1
    cfg.entities["entity"].num_partitions = parts
    cfg.storage.save = False
    return cfg


def step_arguments(p: argparse.ArgumentParser) -> None:
    """The options shared by the step-level scripts (profile_step.py, step_ab.py)."""
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--operator", default="none")
    p.add_argument("--loss", default="softmax")
    p.add_argument("--uniform", type=int, default=50, help="uniform negatives per chunk and side")
    p.add_argument("--batch-size", type=int, default=1000, help="edges per batch (chunks of 50)")


def dtype_arguments(p: argparse.ArgumentParser) -> None:
    """--compute-dtype and --embedding-dtype (suite.py, profile_step.py)."""
    p.add_argument("--compute-dtype", default="float32", choices=["float32", "bfloat16"],
                   help="model.compute_dtype (the roofline stays the float32 peak)")
    p.add_argument("--embedding-dtype", default="float32", choices=["float32", "bfloat16"],
                   help="model.embedding_dtype")


def random_blocks(trainer: Trainer, nodes: int, count: int) -> tuple[list[Batch], Layout]:
    """`count` blocks of uniformly random edges (relation 0, seed 0) for `trainer.train_block`
    over a one-partition table of `nodes` rows, and that table's layout. Blocks [S, C, P]."""
    s, c, k = trainer.cfg.training.batches_per_dispatch, trainer.chunks_per_batch, trainer.chunk
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(count):
        ids = [jnp.asarray(rng.integers(0, nodes, (s, c, k)), jnp.int32) for _ in range(2)]
        blocks.append(Batch(*ids, jnp.zeros((s, c, k), jnp.int32), jnp.ones((s, c, k), jnp.float32)))
    return blocks, Layout(jnp.zeros((1, 2), jnp.int32), jnp.full((1, 2), nodes, jnp.int32))


def train_block(trainer: Trainer, block: Batch, layout: Layout) -> int:
    """One jitted call over all S batches of `block`, waited for; returns the edges it trained."""
    s = block.lhs.shape[0]
    trainer.state, trainer.tables, stats = trainer.train_block(
        trainer.state, trainer.tables, block, jnp.int32(s), layout)
    jax.block_until_ready(stats)
    return block.lhs.size


def run_row(name: str, nodes: int, edges: int, compute_dtype: str = "float32",
            embedding_dtype: str = "float32", batch_size: int = 1000) -> dict:
    dim, op, loss, uniform, parts, pbg = ROWS[name]
    reset_peak_rss()  # the row's own peak, not an earlier row's
    cfg = row_config(dim, op, loss, uniform, parts, compute_dtype, embedding_dtype, batch_size)
    trainer = Trainer(cfg, random_dataset(nodes, edges), CheckpointStore("memory://"))
    compile_s = trainer.compile()
    stats = trainer.train_pass(0, 0, 0)
    trainer.close()
    eps = stats["count"] / stats["wall_seconds"]
    flops = 12 * (50 + uniform) * dim
    return {"row": name, "edges_per_s": eps, "steps_per_s": stats["count"] / stats["train_seconds"],
            "pbg": pbg, "flops_per_edge": flops, "compile_s": compile_s, "rss_mib": peak_rss_mib()}


def run_pbg(python: str, name: str, nodes: int, edges: int, batch_size: int = 1000) -> dict:
    """PBG on the same graph and config (benchmarks/pbg_side.py in PBG's venv): edges/s over its
    train() wall time and over its per-bucket compute time."""
    dim, op, loss, uniform, parts, _ = ROWS[name]
    cmd = [python, str(Path(__file__).with_name("pbg_side.py")), "--nodes", str(nodes), "--edges",
           str(edges), "--dim", str(dim), "--operator", op, "--loss", loss, "--uniform", str(uniform),
           "--parts", str(parts), "--batch-size", str(batch_size)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    r = json.loads(out.strip().splitlines()[-1])
    return {"wall": r["edges"] / r["wall_s"], "compute": r["edges"] / r["compute_s"]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=10_000_000)
    p.add_argument("--pbg-python", help="python of a venv with torchbiggraph: run PBG after each row")
    p.add_argument("--batch-size", type=int, default=1000,
                   help="edges per batch (chunks of 50 stay): an accelerator wants far more than "
                        "PBG's CPU table (the issue's PBG figures are for 1000)")
    p.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "suite.csv",
                   help="the CSV the rows are appended to")
    dtype_arguments(p)
    args = p.parse_args()
    load_plugins(["models"])
    peak = peak_gflops()
    print(f"fp32 matmul peak here: {peak:.0f} GFLOP/s ({jax.default_backend()})", flush=True)
    head = ("row", "wall e/s", "steps e/s", "PBG", "x PBG", "PBG steps", "x steps", "roofline",
            "row bound", "compile", "RSS")
    row_ns: dict[int, float] = {}
    print(f"{head[0]:22s} " + " ".join(f"{h:>9s}" for h in head[1:]))
    for name in args.rows:
        r = run_row(name, args.nodes, args.edges, args.compute_dtype, args.embedding_dtype,
                    args.batch_size)
        side = (run_pbg(args.pbg_python, name, args.nodes, args.edges, args.batch_size)
                if args.pbg_python else None)
        if args.batch_size != 1000:
            r["pbg"] = None  # the figures are for batches of 1000
        pbg = side["wall"] if side else r["pbg"]  # else the figure for this machine
        roof = r["edges_per_s"] * r["flops_per_edge"] / (peak * 1e9)
        dim, uniform = ROWS[name][0], ROWS[name][3]
        if dim not in row_ns:
            row_ns[dim] = row_traffic_ns_apart(args.nodes, dim)
            print(f"row traffic at d={dim}: {row_ns[dim]:.0f} ns per row (gather + write back)",
                  flush=True)
        row_share = r["edges_per_s"] * row_ns[dim] * rows_per_edge(uniform) / 1e9  # of the row bound

        def k(x):
            return f"{x / 1e3:,.0f}k" if x else "-"

        def ratio(a, b):
            return f"{a / b:.1f}" if b else "-"

        print(f"{name:22s} {k(r['edges_per_s']):>9s} {k(r['steps_per_s']):>9s} {k(pbg):>9s} "
              f"{ratio(r['edges_per_s'], pbg):>9s} {k(side and side['compute']):>9s} "
              f"{ratio(r['steps_per_s'], side and side['compute']):>9s} {roof:>9.0%} "
              f"{row_share:>9.0%} "
              f"{r['compile_s']:>8.1f}s {r['rss_mib']:>7,.0f}MB", flush=True)
        append_csv(args.out, CSV_HEADER,
                   [time.strftime("%Y-%m-%dT%H:%M:%S"), platform.node(), jax.default_backend(), name,
                    args.nodes, args.edges, round(r["edges_per_s"]), r["pbg"] or "", round(roof, 3),
                    round(peak), round(r["compile_s"], 2), round(r["rss_mib"]),
                    round(r["steps_per_s"]), round(side["wall"]) if side else "",
                    round(side["compute"]) if side else "", args.compute_dtype, args.embedding_dtype,
                    args.batch_size, round(row_ns[dim], 1), round(row_share, 3)])


if __name__ == "__main__":
    main()
