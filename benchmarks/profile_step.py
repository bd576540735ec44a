"""Where a training step's time goes: a JAX profiler trace of one block of batches, summarised.

    python benchmarks/profile_step.py                       # d=100, dot, softmax, 50 + 50 negatives
    python benchmarks/profile_step.py --dim 400 --operator complex_diagonal --top 30
    python benchmarks/profile_step.py --batch-size 100000     # on a GPU: its kernels, per stream

Trains the suite's configuration on a random graph (1M nodes) for one block to compile and warm
up, then traces the next block and prints the XLA operations that took the most time per batch
(their names match the HLO dump: XLA_FLAGS=--xla_dump_to=DIR --xla_dump_hlo_as_text) and how busy
each thread was. The trace (open it in Perfetto / TensorBoard) is kept in --trace-dir. Tracing
slows the step down (about 20-30% at d=100), so read shares, not absolute times.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json

import jax
from suite import (  # benchmarks/suite.py, beside this script
    dtype_arguments,
    random_blocks,
    row_config,
    step_arguments,
    train_block,
)

from jgraph.assembly import load_plugins
from jgraph.data.generate import random_dataset
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.trainer import Trainer

SKIP = ("$", "Thunk", "Threadpool", "Pjit", "PjRt", "end:", "while")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    step_arguments(p)
    p.add_argument("--top", type=int, default=20)
    dtype_arguments(p)
    p.add_argument("--trace-dir", default="/tmp/jgraph-step-trace")
    args = p.parse_args()
    load_plugins(["models"])
    cfg = row_config(args.dim, args.operator, args.loss, args.uniform, 1, args.compute_dtype,
                     args.embedding_dtype, args.batch_size)
    trainer = Trainer(cfg, random_dataset(args.nodes, 100_000), CheckpointStore("memory://"))
    blocks, layout = random_blocks(trainer, args.nodes, 1)
    s = cfg.training.batches_per_dispatch

    def run() -> None:
        train_block(trainer, blocks[0], layout)

    run()
    jax.profiler.start_trace(args.trace_dir)
    run()
    jax.profiler.stop_trace()
    trainer.close()
    path = sorted(glob.glob(f"{args.trace_dir}/plugins/profile/*/*.trace.json.gz"))[-1]
    trace = json.load(gzip.open(path))["traceEvents"]
    # an accelerator's kernels are events of its own process ("/device:GPU:0", streams as threads);
    # on the CPU backend, the host's XLA threads are the device
    procs = {e["pid"]: e["args"]["name"] for e in trace
             if e.get("ph") == "M" and e.get("name") == "process_name"}
    device = {pid for pid, name in procs.items() if name.startswith("/device:")}
    events = [e for e in trace
              if e.get("ph") == "X" and (not device or e.get("pid") in device)
              and not any(e["name"].startswith(x) or x in e["name"] for x in SKIP)]
    if device:
        print("device events of", ", ".join(sorted(procs[pid] for pid in device)))
    per_op, per_thread = collections.Counter(), collections.Counter()
    for e in events:
        per_op[e["name"]] += e["dur"]
        per_thread[e["tid"]] += e["dur"]
    span = max(e["ts"] + e["dur"] for e in events) - min(e["ts"] for e in events)
    busy = sum(per_op.values())
    threads = ", ".join(f"{v / span:.0%}" for _, v in per_thread.most_common(4))
    print(f"{s} batches traced: {span / s:,.0f} us per batch, operations busy {busy / s:,.0f} us per "
          f"batch on {len(per_thread)} threads ({threads} busy)")
    for name, t in per_op.most_common(args.top):
        print(f"{t / s:9.1f} us/batch {t / busy:6.1%}  {name}")
    print(f"trace: {path}")


if __name__ == "__main__":
    main()
