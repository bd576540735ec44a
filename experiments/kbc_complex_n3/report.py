#!/usr/bin/env python
"""Write results/README.md for ComplEx-N3 (Lacroix et al. 2018): published vs jgraph, the settings
side by side, the command and its wall time, learning curves.

    python experiments/kbc_complex_n3/report.py [--results experiments/kbc_complex_n3/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jgraph.lab.plot import plot_bars, plot_runs
from jgraph.lab.report import markdown_table, provenance, published_vs_jgraph
from jgraph.lab.runs import finished_runs

HERE = Path(__file__).resolve().parent
DATA_NAMES = {"fb15k237": "FB15k-237", "fb15k": "FB15k"}
METRICS = ["test.filtered.mrr", "test.filtered.hits@1", "test.filtered.hits@3", "test.filtered.hits@10",
           "test.filtered.mr", "test.raw.mrr"]
HEADER = ["system (source)", "data", "filtered MRR", "Hits@1", "Hits@3", "Hits@10", "MR", "raw MRR"]
PUBLISHED = {
    "fb15k237": [
        {"cells": ["ComplEx-N3, reciprocal (Lacroix et al. 2018; kbc README)", "FB15k-237"],
         "values": {"test.filtered.mrr": 0.37, "test.filtered.hits@1": 0.27, "test.filtered.hits@10": 0.56}},
        {"cells": ["LibKGE ComplEx (Ruffinelli et al. 2020)", "FB15k-237"],
         "values": {"test.filtered.mrr": 0.348, "test.filtered.hits@10": 0.534}},
    ],
    "fb15k": [
        {"cells": ["ComplEx-N3, reciprocal (Lacroix et al. 2018)", "FB15k"],
         "values": {"test.filtered.mrr": 0.86, "test.filtered.hits@10": 0.91}},
    ],
}
# the published setting (kbc README command for FB15k-237) beside this run's config key
SETTINGS = [
    ("model", "ComplEx, reciprocal relations", "ComplEx (complex_diagonal + dot), reciprocal", None),
    ("loss", "cross-entropy over all entities", "softmax over every entity (negatives=all)", None),
    ("rank", "1000 (2000 reals)", "model.dimension", "model.dimension"),
    ("N3 weight", "5e-2", "model.regularization_coef", "model.regularization_coef"),
    ("optimizer", "Adagrad, lr 0.1", "row-wise Adagrad, optimizer.lr", "optimizer.lr"),
    ("batch size", "100", "training.batch_size", "training.batch_size"),
    ("epochs", "100", "training.num_epochs", "training.num_epochs"),
    ("init scale", "1e-3", "model.init_scale", "model.init_scale"),
]
PROTOCOL = """\
Protocol: train on train; evaluate the test set by full ranking against every entity, both sides
(reciprocal relations: the head query uses the inverse relation), *filtered* (the other true
answers from train + valid + test removed), averaged over both sides. The validation MRR
on 3000 edges every 3 epochs is drawn in the curves. The published number needs rank 1000 and 100
epochs of batch 100 on a GPU; on this 2-core CPU 1-vs-all at d=200 takes about 75 s an epoch, so
the recipe is sized to about 40 minutes (d=200, 30 epochs, batch 1000): expect a lower MRR than
0.37, and compare the curve's slope at the end to judge what more epochs would give."""


def _get(cfg: dict, dotted: str):
    for k in dotted.split("."):
        cfg = cfg.get(k, {}) if isinstance(cfg, dict) else {}
    return cfg if cfg != {} else None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    res = a.results
    runs = finished_runs(res / "runs", DATA_NAMES)
    if not runs:
        print(f"{res}/runs: no finished run yet (python experiments/kbc_complex_n3/run.py)", file=sys.stderr)
        return 1
    lines = ["# ComplEx-N3 with reciprocal relations (Lacroix et al. 2018), reproduced with jgraph", "",
             "Written by `python experiments/kbc_complex_n3/report.py` from the runs below "
             "(made by `python experiments/kbc_complex_n3/run.py`).", "", PROTOCOL, ""]
    for data, run in runs.items():
        name = DATA_NAMES[data]
        cfg = (run.metrics or {}).get("config", {})
        dim = _get(cfg, "model.dimension")
        measured = [([f"**jgraph** (d={dim}, {len(run.history)} epochs, this machine)", name], run)]
        lines += [f"## {name}", "", published_vs_jgraph(HEADER, PUBLISHED[data], measured, METRICS), ""]
        rows = [[what, paper, f"{text} = {_get(cfg, key)}" if key else text]
                for what, paper, text, key in SETTINGS]
        lines += ["Settings, published vs this run:", "",
                  markdown_table(["", "published (kbc)", "jgraph"], rows), ""]
        curves = plot_runs([run], res / f"{data}_curves.png", ["ComplEx-N3"], f"ComplEx-N3, {name}")
        bars = plot_bars({f"jgraph, {name}": run}, {p["cells"][0].split(" (")[0] + f", {name}": p["values"]
                                                     for p in PUBLISHED[data][:1]},
                         METRICS[:4], res / f"{data}_bars.png", f"{name}: test set, filtered")
        lines += [f"![learning curves]({curves.name})", "", f"![published vs jgraph]({bars.name})", "",
                  "### How it was made", "", provenance(run, res)]
    out = res / "README.md"
    out.write_text("\n".join(lines))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
