#!/usr/bin/env python
"""The default knowledge-graph recipe (`+experiment=kg`, issue 30) on UMLS, Kinships, Nations and
FB15k-237, each with the recipe's 20-minute budget: train, then write the report.

    python experiments/kg_recipe/run.py                      # small graphs first, FB15k-237 last
    python experiments/kg_recipe/run.py --data umls nations  # some of them
    python experiments/kg_recipe/run.py --dry-run            # print the commands only
    python experiments/kg_recipe/run.py training.time_budget_minutes=60   # any override, every run

Run directories: results/runs/<data>/ (run_info.json: the command and its wall time; a finished
run is skipped unless --fresh). Then report.py writes results/README.md, results.csv and the PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import experiment_parser, relative_to, run_plan, run_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATASETS = ("umls", "kinships", "nations", "fb15k237")


def plan(datasets: list[str], results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    return [(d, ["+experiment=kg", f"data={d}", "training.progress=false", *extra],
             relative_to(results, REPO) / "runs" / d) for d in datasets]


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--data", nargs="+", default=list(DATASETS), choices=DATASETS)
    a = ap.parse_args(argv)
    run_plan(plan(a.data, a.results, a.overrides), REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
