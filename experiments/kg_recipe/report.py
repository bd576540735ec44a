#!/usr/bin/env python
"""Write results/README.md, results/results.csv and the learning curves for the default KG recipe
(`+experiment=kg`): per graph, what the recipe chose, training minutes, test filtered MRR,
Hits@1/10, the self-outranks share, and the published ComplEx figures.

    python experiments/kg_recipe/report.py [--results experiments/kg_recipe/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jgraph.lab.plot import plot_runs
from jgraph.lab.report import markdown_table, provenance, write_csv
from jgraph.lab.runs import finished_runs

HERE = Path(__file__).resolve().parent
DATA_NAMES = {"umls": "UMLS", "kinships": "Kinships", "nations": "Nations", "fb15k237": "FB15k-237"}
# published ComplEx (filtered, test): MRR, Hits@1, Hits@10, source
PUBLISHED = {
    "umls": (0.894, 0.823, 0.995, "ComplEx, Dettmers et al. 2018 (ConvE), Kinship/UMLS table"),
    "kinships": (0.823, 0.733, 0.971, "ComplEx, Dettmers et al. 2018 (ConvE), Kinship/UMLS table"),
    "nations": (0.75, 0.62, 0.99, "ComplEx, Rocktäschel & Riedel 2017 (NTP), Table 1"),
    "fb15k237": (0.37, 0.27, 0.56, "ComplEx-N3 rank 1000, Lacroix et al. 2018 (kbc README)"),
}
HEADER = ["dataset", "recipe chosen", "epochs (evaluated)", "train min", "MRR", "Hits@1", "Hits@10",
          "self-outranks share", "published MRR", "published Hits@1", "published Hits@10"]
SHOWN = ("model.dimension", "negatives.mode", "negatives.self_weight", "training.batch_size",
         "training.num_epochs", "model.regularization_coef", "optimizer.lr")


def _choices(metrics: dict) -> str:
    """The recipe's choices (and the keys the command kept), shortened."""
    applied = dict(a.split("=", 1) for a in (metrics.get("recipe") or {}).get("applied", []))
    short = {"model.dimension": "d", "negatives.mode": "negs", "negatives.self_weight": "self w",
             "training.batch_size": "batch", "training.num_epochs": "max epochs",
             "model.regularization_coef": "N3", "optimizer.lr": "lr"}
    return ", ".join(f"{short[k]} {applied[k]}" for k in SHOWN if k in applied)


def rows(runs: dict) -> list[list]:
    out = []
    for data, run in runs.items():
        m = run.metrics
        t = m["eval"]["test"]["filtered"]["avg"]
        es = m.get("early_stopping") or {}
        epochs = f"{len(run.history)} ({es.get('evaluated_epoch') or len(run.history)})"
        pub = PUBLISHED[data]
        out.append([DATA_NAMES[data], _choices(m), epochs, round(m["train_seconds"] / 60, 1),
                    round(t["mrr"], 4), round(t["hits@1"], 4), round(t["hits@10"], 4),
                    round(t["self_outranks_share"], 4), *pub[:3]])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    res = a.results
    runs = finished_runs(res / "runs", DATA_NAMES)
    if not runs:
        print(f"{res}/runs: no finished run yet (python experiments/kg_recipe/run.py)", file=sys.stderr)
        return 1
    table = rows(runs)
    write_csv(res / "results.csv", HEADER, table)
    lines = ["# The default KG recipe (`+experiment=kg`), issue 30", "",
             "Written by `python experiments/kg_recipe/report.py` from the runs below (made by "
             "`python experiments/kg_recipe/run.py`). Test set, full ranking against every entity, "
             "both sides, filtered; self-outranks share: the queries whose own entity scores above "
             "the answer.", "", markdown_table(HEADER, table, digits=4), "",
             "Published: " + "; ".join(f"{DATA_NAMES[d]}: {PUBLISHED[d][3]}" for d in runs), ""]
    for data, run in runs.items():
        png = plot_runs([run], res / f"{data}_curves.png", title=f"{DATA_NAMES[data]}, +experiment=kg")
        lines += [f"## {DATA_NAMES[data]}", "", f"![curves]({png.name})", "", provenance(run, res), ""]
    (res / "README.md").write_text("\n".join(lines))
    print(f"wrote {res / 'README.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
