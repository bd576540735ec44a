#!/usr/bin/env python
"""Write results/README.md for the FB15k-237 sweeps: each sweep's summary (made again from its
run folders by `jgraph.lab.sweep_summary`), its command and wall time, and its plot.

    python experiments/sweeps_fb15k237/report.py [--results experiments/sweeps_fb15k237/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jgraph.lab.sweep_summary import summarize

HERE = Path(__file__).resolve().parent
SWEEPS = {"grid": "Grid sweep (Hydra basic sweeper, conf/hydra/sweeper/grid_small.yaml)",
          "optuna": "Optuna sweep (TPE, conf/hydra/sweeper/optuna_mrr.yaml), maximizing validation MRR"}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    lines = ["# Hyperparameter sweeps on FB15k-237 (3 epochs a run)", "",
             "Written by `python experiments/sweeps_fb15k237/report.py` (runs: "
             "`python experiments/sweeps_fb15k237/run.py`). Each run: conf/experiment/fb15k237.yaml with "
             "d=200, 500 uniform negatives, 3 epochs; the metric is the filtered validation MRR that "
             "`python -m jgraph.train` returns to the sweeper. Short runs rank settings by how fast "
             "they learn, which is not always how far they get.", ""]
    found = 0
    for name, title in SWEEPS.items():
        sweep = a.results / name
        if not sweep.is_dir():
            continue
        try:
            res = summarize(sweep)
        except FileNotFoundError:
            continue
        found += 1
        body = res["markdown"].split("\n", 2)[2]  # drop the summary's own title
        body = body.replace("](summary.png)", f"]({name}/summary.png)")
        lines += [f"## {title}", "", f"Folder: `{name}/` (summary.csv has every run's folder and values).",
                  "", body, ""]
    if not found:
        print(f"{a.results}: no sweep yet (python experiments/sweeps_fb15k237/run.py)", file=sys.stderr)
        return 1
    out = a.results / "README.md"
    out.write_text("\n".join(lines))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
