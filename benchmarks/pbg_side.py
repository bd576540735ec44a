"""PyTorch-BigGraph on the suite's graph and config, run in PBG's own venv (never a jgraph dependency).

    python benchmarks/pbg_side.py --dim 100 --operator none --loss softmax --uniform 50 --parts 1

run with the PBG venv's python (see docs: `pip install torch==2.13.0 "setuptools<81"
torchbiggraph==1.0.0`); `benchmarks/suite.py --pbg-python PATH` runs it after each jgraph row so
both figures come from the same minutes of this VM. Builds the same uniform random graph as
jgraph.data.generate.random_dataset (numpy seed 0), writes PBG's HDF5 buckets (entity i in
partition i % P), trains one epoch with 2 HOGWILD workers and prints one JSON line: edges, the
wall time of train() (with its initialisation and checkpoint write) and the sum of PBG's own
per-bucket compute times ("Processed N edges in T s").
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import tempfile
import time
from pathlib import Path

import numpy as np


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=1_000_000)
    p.add_argument("--edges", type=int, default=10_000_000)
    p.add_argument("--dim", type=int, default=100)
    p.add_argument("--operator", default="none")
    p.add_argument("--loss", default="softmax")
    p.add_argument("--uniform", type=int, default=50)
    p.add_argument("--parts", type=int, default=1)
    p.add_argument("--batch-size", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()

    import torch
    from torchbiggraph.config import parse_config
    from torchbiggraph.edgelist import EdgeList
    from torchbiggraph.entitylist import EntityList
    from torchbiggraph.graph_storages import EDGE_STORAGES, ENTITY_STORAGES
    from torchbiggraph.train import train
    from torchbiggraph.util import SubprocessInitializer, setup_logging

    rng = np.random.default_rng(0)  # as random_dataset(nodes, edges, seed=0)
    lhs = rng.integers(args.nodes, size=args.edges)
    rhs = rng.integers(args.nodes, size=args.edges)
    work = Path(tempfile.mkdtemp(prefix="pbg-side-"))
    n, parts = args.nodes, args.parts
    ents = ENTITY_STORAGES.make_instance(str(work / "entities"))
    ents.prepare()
    for part in range(parts):
        ents.save_count("all", part, len(range(part, n, parts)))
    edges = EDGE_STORAGES.make_instance(str(work / "edges"))
    edges.prepare()
    lp, rp = lhs % parts, rhs % parts
    for i in range(parts):
        for j in range(parts):
            sel = (lp == i) & (rp == j)
            edges.save_edges(i, j, EdgeList(EntityList.from_tensor(torch.from_numpy(lhs[sel] // parts)),
                                            EntityList.from_tensor(torch.from_numpy(rhs[sel] // parts)),
                                            torch.zeros(int(sel.sum()), dtype=torch.long)))
    config = parse_config({
        "entity_path": str(work / "entities"), "edge_paths": [str(work / "edges")],
        "checkpoint_path": str(work / "model"),
        "entities": {"all": {"num_partitions": parts}},
        "relations": [{"name": "edge", "lhs": "all", "rhs": "all", "operator": args.operator}],
        "dimension": args.dim, "comparator": "dot", "loss_fn": args.loss, "margin": 0.1,
        "num_batch_negs": 50, "num_uniform_negs": args.uniform, "batch_size": args.batch_size,
        "num_epochs": 1, "lr": 0.1, "workers": args.workers, "eval_fraction": 0.0,
    })
    compute = []

    class Grab(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            m = re.search(r"Processed (\d+) edges in ([\d.]+) s", record.getMessage())
            if m:
                compute.append(float(m.group(2)))

    setup_logging()
    logging.getLogger().addHandler(Grab())
    init = SubprocessInitializer()
    init.register(setup_logging)
    t0 = time.perf_counter()
    train(config, subprocess_init=init)
    wall = time.perf_counter() - t0
    print(json.dumps({"edges": args.edges, "wall_s": wall, "compute_s": sum(compute),
                      "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)


if __name__ == "__main__":
    main()
