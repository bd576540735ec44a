"""Training steps of two or more configurations, alternating in one process (an A/B that the VM's
speed drift cannot bias: each round times every variant within the same minute).

    python benchmarks/step_ab.py                                   # d=100 dot: float32 vs bfloat16 compute
    python benchmarks/step_ab.py --dim 400 --operator complex_diagonal
    python benchmarks/step_ab.py --variants float32/float32 float32/bfloat16   # bfloat16 tables

A variant is COMPUTE/EMBEDDING (model.compute_dtype / model.embedding_dtype). Each trainer holds
its own 1M-row table and runs the suite's row configuration (benchmarks/suite.py: softmax, batch
1000, 50 batch + 50 uniform negatives) over the same 4 blocks of random edges per round; prints
the median edges/s of each variant and, per round, its ratio to the first variant.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from suite import row_config  # benchmarks/suite.py, beside this script

from jgraph.data.generate import random_dataset
from jgraph.model import Batch
from jgraph.partition import Layout
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train import load_plugins
from jgraph.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--operator", default="none")
    p.add_argument("--loss", default="softmax")
    p.add_argument("--variants", nargs="+", default=["float32/float32", "bfloat16/float32"])
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    load_plugins(["models"])
    trainers = {}
    for v in args.variants:
        compute, embedding = v.split("/")
        cfg = row_config(args.dim, args.operator, args.loss, 50, 1, compute, embedding)
        trainers[v] = Trainer(cfg, random_dataset(args.nodes, 100_000), CheckpointStore("memory://"))
    first = trainers[args.variants[0]]
    s, c, k = first.cfg.training.batches_per_dispatch, first.chunks_per_batch, first.chunk
    rng = np.random.default_rng(0)
    blocks = []
    for _ in range(4):
        ids = [jnp.asarray(rng.integers(0, args.nodes, (s, c, k)), jnp.int32) for _ in range(2)]
        blocks.append(Batch(*ids, jnp.zeros((s, c, k), jnp.int32), jnp.ones((s, c, k), jnp.float32)))
    layout = Layout(jnp.zeros((1, 2), jnp.int32), jnp.full((1, 2), args.nodes, jnp.int32))

    def run(t: Trainer, block: Batch) -> None:
        t.state, t.tables, stats = t.train_block(t.state, t.tables, block, jnp.int32(s), layout)
        jax.block_until_ready(stats)

    for t in trainers.values():  # compile and touch the table
        run(t, blocks[0])
    eps: dict[str, list[float]] = {v: [] for v in trainers}
    for _ in range(args.rounds):
        for v, t in trainers.items():
            start = time.perf_counter()
            for b in blocks:
                run(t, b)
            eps[v].append(len(blocks) * s * c * k / (time.perf_counter() - start))
    for t in trainers.values():
        t.close()
    base = eps[args.variants[0]]
    print(f"d={args.dim} operator={args.operator} loss={args.loss}, {args.rounds} rounds")
    for v, r in eps.items():
        ratios = " ".join(f"{a / b:.2f}" for a, b in zip(r, base, strict=True))
        print(f"{v:20s} median {np.median(r) / 1e3:6.0f}k edges/s   per round vs first: {ratios}   "
              f"mean {np.mean(r) / np.mean(base):.2f}")


if __name__ == "__main__":
    main()
