#!/usr/bin/env python
"""PyTorch-BigGraph's FB15k table (ComplEx, TransE): train each model, then write the report.

    python experiments/pbg_fb15k/run.py                      # FB15k-237 from ../shared/data
    python experiments/pbg_fb15k/run.py --data fb15k         # FB15k (python -m jgraph.data.download fb15k)
    python experiments/pbg_fb15k/run.py --models complex --dry-run        # print the commands only
    python experiments/pbg_fb15k/run.py training.num_epochs=10            # overrides for every run

Run directories: results/runs/<data>/<model>/ (run_info.json: the command and its wall time; a
finished run is skipped unless --fresh). Then report.py writes results/README.md and the PNGs.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import experiment_parser, relative_to, run_plan, run_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
EXPERIMENTS = {"complex": "fb15k", "transe": "pbg_fb15k_transe"}  # conf/experiment/<name>.yaml
DATASETS = ("fb15k237", "fb15k")
# conf/experiment/fb15k.yaml evaluates only at the end: add the per-epoch curve for the report
CURVES = ["eval.every_epochs=5", "eval.every_max_edges=3000"]


def plan(data: str, models: list[str], results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    """(name, overrides, run directory relative to the repository) of each run."""
    out = []
    for m in models:
        overrides = [f"+experiment={EXPERIMENTS[m]}", f"data={data}", *CURVES, *extra]
        out.append((f"{data}/{m}", overrides, relative_to(results, REPO) / "runs" / data / m))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--data", default="fb15k237", choices=DATASETS)
    ap.add_argument("--models", nargs="+", default=list(EXPERIMENTS), choices=list(EXPERIMENTS))
    a = ap.parse_args(argv)
    run_plan(plan(a.data, a.models, a.results, a.overrides), REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
