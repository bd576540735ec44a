"""Training steps of two or more configurations, alternating in one process (an A/B that the VM's
speed drift cannot bias: each round times every variant within the same minute).

    python benchmarks/step_ab.py                                   # d=100 dot: float32 vs bfloat16 compute
    python benchmarks/step_ab.py --dim 400 --operator complex_diagonal
    python benchmarks/step_ab.py --uniform 1000                    # the suite's 1000-negative row
    python benchmarks/step_ab.py --variants float32/float32 float32/bfloat16   # bfloat16 tables
    python benchmarks/step_ab.py --nodes 14541 --dim 400 --operator complex_diagonal --uniform 2000 \
        --variants float32/float32/sparse float32/float32/dense     # FB15k-237's shape: row updates

A variant is COMPUTE/EMBEDDING[/ROW_UPDATE] (model.compute_dtype / model.embedding_dtype /
training.row_update, auto by default). Each trainer holds its own table of --nodes rows and runs
the suite's row configuration (benchmarks/suite.py: softmax, batch
1000, 50 batch negatives and --uniform uniform ones, 50 by default) over the same 4 blocks of
random edges per round; prints the median edges/s of each variant and, per round, its ratio to
the first variant.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from suite import (  # benchmarks/suite.py, beside this script
    random_blocks,
    row_config,
    step_arguments,
    train_block,
)

from jgraph.assembly import load_plugins
from jgraph.data.generate import random_dataset
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.trainer import Trainer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    step_arguments(p)
    p.add_argument("--variants", nargs="+", default=["float32/float32", "bfloat16/float32"])
    p.add_argument("--rounds", type=int, default=6)
    args = p.parse_args()
    load_plugins(["models"])
    trainers = {}
    for v in args.variants:
        compute, embedding, *update = v.split("/")
        cfg = row_config(args.dim, args.operator, args.loss, args.uniform, 1, compute, embedding,
                         args.batch_size)
        cfg.training.row_update = update[0] if update else "auto"
        trainers[v] = Trainer(cfg, random_dataset(args.nodes, 100_000), CheckpointStore("memory://"))
    blocks, layout = random_blocks(trainers[args.variants[0]], args.nodes, 4)
    for t in trainers.values():  # compile and touch the table
        train_block(t, blocks[0], layout)
    eps: dict[str, list[float]] = {v: [] for v in trainers}
    for _ in range(args.rounds):
        for v, t in trainers.items():
            start = time.perf_counter()
            edges = sum(train_block(t, b, layout) for b in blocks)
            eps[v].append(edges / (time.perf_counter() - start))
    for t in trainers.values():
        t.close()
    base = eps[args.variants[0]]
    print(f"d={args.dim} operator={args.operator} loss={args.loss} uniform={args.uniform}, "
          f"{args.rounds} rounds")
    for v, r in eps.items():
        ratios = " ".join(f"{a / b:.2f}" for a, b in zip(r, base, strict=True))
        print(f"{v:20s} median {np.median(r) / 1e3:6.0f}k edges/s   per round vs first: {ratios}   "
              f"mean {np.mean(r) / np.mean(base):.2f}")


if __name__ == "__main__":
    main()
