#!/usr/bin/env python
"""A small grid sweep and a small Optuna sweep on FB15k-237 (3 epochs a run), each summarized.

    python experiments/sweeps_fb15k237/run.py                 # both: about 15 min on 2 cores
    python experiments/sweeps_fb15k237/run.py --which grid    # the grid only (6 runs, about 5 min)
    python experiments/sweeps_fb15k237/run.py --which optuna  # needs: pip install hydra-optuna-sweeper
    python experiments/sweeps_fb15k237/run.py --dry-run       # print the commands only

Grid: conf/hydra/sweeper/grid_small.yaml (optimizer.lr 0.05,0.1,0.2 x model.regularization_coef
0.01,0.05) with Hydra's basic sweeper. Optuna: conf/hydra/sweeper/optuna_mrr.yaml (TPE, 10 trials,
log-uniform lr in [0.02, 0.5] and N3 weight in [0.001, 0.2]) maximizing the validation MRR that
`python -m jgraph.train` returns. Both start from conf/experiment/fb15k237.yaml shrunk to a few
minutes a run (d=200, 500 uniform negatives, 3 epochs, no checkpoint). Sweep folders:
results/grid/ and results/optuna/, one run folder each named by its overrides; then
`python -m jgraph.lab.sweep_summary` writes summary.csv/.md/.png in each, and report.py
results/README.md with both tables. A finished sweep (summary.md present) is skipped unless --fresh.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from jgraph.lab.runs import experiment_parser, relative_to, run_plan, run_report
from jgraph.lab.sweep_summary import summarize

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BASE = ["+experiment=fb15k237", "model.dimension=200", "negatives.num_uniform_negs=500",
        "training.num_epochs=3", "eval.every_epochs=1", "eval.every_max_edges=2000", "storage.save=false"]
SWEEPS = {"grid": ["hydra/sweeper=grid_small"],
          "optuna": ["hydra/sweeper=optuna_mrr", "hydra.sweeper.n_trials=10"]}


def plan(which: list[str], results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    return [(w, [*SWEEPS[w], *BASE, *extra], relative_to(results, REPO) / w) for w in which]


def optuna_plugin() -> bool:
    try:
        return importlib.util.find_spec("hydra_plugins.hydra_optuna_sweeper") is not None
    except ModuleNotFoundError:
        return False


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--which", default="both", choices=[*SWEEPS, "both"])
    a = ap.parse_args(argv)
    which = list(SWEEPS) if a.which == "both" else [a.which]
    if "optuna" in which and not a.dry_run and not optuna_plugin():
        print("the Optuna sweep needs the plugin: pip install hydra-optuna-sweeper", file=sys.stderr)
        return 1
    for name, overrides, sweep_dir in plan(which, a.results, a.overrides):
        run_plan([(name, overrides, sweep_dir)], REPO, a.dry_run, a.fresh, multirun=True,
                 done_file="summary.md")
        if not a.dry_run:
            summarize(REPO / sweep_dir)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
