#!/usr/bin/env python
"""ComplEx-N3 with reciprocal relations and 1-vs-all cross-entropy (Lacroix et al. 2018) on
FB15k-237: train, then write the report.

    python experiments/kbc_complex_n3/run.py                  # d=200, 30 epochs: about 40 min on 2 cores
    python experiments/kbc_complex_n3/run.py --dry-run        # print the command only
    python experiments/kbc_complex_n3/run.py model.dimension=400 training.num_epochs=50   # any override
    python experiments/kbc_complex_n3/run.py --data fb15k     # FB15k (published 0.86)

Run directory: results/runs/<data>/ (run_info.json: the command and its wall time; a finished run
is skipped unless --fresh). Then report.py writes results/README.md and the PNG.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import experiment_parser, relative_to, run_plan, run_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATASETS = ("fb15k237", "fb15k")


def plan(data: str, results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    overrides = ["+experiment=kbc_complex_n3", f"data={data}", *extra]
    return [(data, overrides, relative_to(results, REPO) / "runs" / data)]


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--data", default="fb15k237", choices=DATASETS)
    a = ap.parse_args(argv)
    run_plan(plan(a.data, a.results, a.overrides), REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
