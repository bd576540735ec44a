#!/usr/bin/env python
"""The social-recipe table: for every finished run under results/runs/<graph>/<variant>/, test
filtered MRR, Hits@10 and AUC, the degree baseline's MRR that the evaluator computes (same filter,
the query excluded, realistic ties), their ratio (target >= 1.5, issue 30), the valid MRR and the
wall time. Printed, and written to results/results.csv and results/README.md with each command.

    python experiments/social_blogcatalog/report.py [--results experiments/social_blogcatalog/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jgraph.lab.report import fmt_seconds, markdown_table, provenance, write_csv
from jgraph.lab.runs import Run, find_runs

HERE = Path(__file__).resolve().parent
HEADER = ["graph", "variant", "test MRR", "test Hits@10", "test AUC", "degree baseline MRR",
          "ratio", "valid MRR", "valid ratio", "epochs", "train s", "wall s"]


def row(run: Run, runs_dir: Path) -> list:
    m = run.metrics
    graph, variant = run.path.relative_to(runs_dir).parts[:2]
    test = m["eval"]["test"]["filtered"]["avg"]
    valid = m["eval"].get("valid", {}).get("filtered", {}).get("avg", {})
    base = m.get("degree_baseline_mrr", {})
    ratio = test["mrr"] / base["test"] if base.get("test") else None
    vratio = valid["mrr"] / base["valid"] if valid and base.get("valid") else None
    return [graph, variant, test["mrr"], test["hits@10"], test.get("auc"), base.get("test"), ratio,
            valid.get("mrr"), vratio, len(m.get("history", [])), m.get("train_seconds"),
            run.wall_seconds]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    runs_dir = a.results / "runs"
    runs = sorted((r for r in find_runs(runs_dir) if r.finished), key=lambda r: str(r.path))
    if not runs:
        print(f"{runs_dir}: no finished runs (python experiments/social_blogcatalog/run.py)",
              file=sys.stderr)
        return 1
    rows = [row(r, runs_dir) for r in runs]
    write_csv(a.results / "results.csv", HEADER, rows)
    table = markdown_table(HEADER, rows, digits=4)
    print(table)
    lines = ["# Social recipes against the degree baseline", "",
             "Written by `python experiments/social_blogcatalog/report.py` from the runs below "
             "(made by `python experiments/social_blogcatalog/run.py`). Filtered ranking among every "
             "node, the query itself excluded; the degree baseline ranks every candidate by its "
             "training degree (same filter). Ratio = MRR / degree baseline MRR; issue 30 asks for "
             ">= 1.5. Wall times on the shared 2-core machine, under load.", "", table, "",
             "## Runs", ""]
    for r, cells in zip(runs, rows, strict=True):
        lines += [f"### {cells[0]} / {cells[1]} (wall {fmt_seconds(r.wall_seconds)})", "",
                  provenance(r, a.results)]
    (a.results / "README.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
