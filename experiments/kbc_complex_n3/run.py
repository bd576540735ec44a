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

import argparse
import importlib.util
import sys
from pathlib import Path

from jgraph.runs import relative_to, run_plan

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATASETS = ("fb15k237", "fb15k")


def plan(data: str, results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    overrides = ["+experiment=kbc_complex_n3", f"data={data}", *extra]
    return [(data, overrides, relative_to(results, REPO) / "runs" / data)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default="fb15k237", choices=DATASETS)
    ap.add_argument("--results", type=Path, default=HERE / "results")
    ap.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    ap.add_argument("--fresh", action="store_true", help="run again a run that already finished")
    ap.add_argument("overrides", nargs="*", help="extra config overrides")
    a = ap.parse_args(argv)
    run_plan(plan(a.data, a.results, a.overrides), REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    spec = importlib.util.spec_from_file_location("kbc_complex_n3_report", HERE / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report.main(["--results", str(a.results)])


if __name__ == "__main__":
    sys.exit(main())
