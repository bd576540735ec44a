#!/usr/bin/env python
"""DeepWalk on BlogCatalog (Perozzi et al. 2014, Table 2): embeddings trained on the pairs of
truncated random walks (data.walks), then node classification; prints the F1 table beside
DeepWalk's and writes results/f1.csv and results/README.md.

    python experiments/deepwalk_blogcatalog/run.py                 # train + classify (10 splits)
    python experiments/deepwalk_blogcatalog/run.py --repeats 3     # fewer random splits per fraction
    python experiments/deepwalk_blogcatalog/run.py --dry-run       # print the commands only
    python experiments/deepwalk_blogcatalog/run.py data.walks.per_node=20   # overrides for training

1. `+experiment=deepwalk_blogcatalog`: walks on the whole graph (labels never seen), pairs within
   the window trained by the dot comparator and softmax (conf/experiment/deepwalk_blogcatalog.yaml).
2. `python -m jgraph.cli.node_classification` on 10%, 20%, ..., 90% of the users, 10 random splits
   each (one-vs-rest logistic regression, each test user's k top groups; micro/macro-F1).
Run directory: results/runs/deepwalk/ (run_info.json and classify_info.json: the commands and
their wall times; finished steps are skipped unless --fresh).
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import data_env, experiment_parser, relative_to, run_plan, run_report, timed_command

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FRACTIONS = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]


def plan(results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    return [("deepwalk", ["+experiment=deepwalk_blogcatalog", *extra],
             relative_to(results, REPO) / "runs" / "deepwalk")]


def classify_args(run_dir: Path, labels: str, repeats: int) -> list[str]:
    return [sys.executable, "-m", "jgraph.cli.node_classification", str(run_dir), "--labels", labels,
            "--fractions", *FRACTIONS, "--repeats", str(repeats)]


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--repeats", type=int, default=10, help="random splits per training fraction")
    a = ap.parse_args(argv)
    ((_, _, run_dir),) = steps = plan(a.results, a.overrides)
    run_plan(steps, REPO, a.dry_run, a.fresh)
    env = data_env(REPO)
    labels = str(Path(env.get("JGRAPH_DATA", "data")) / "BlogCatalog" / "groups.tsv.gz")
    if a.fresh or a.dry_run or not (REPO / run_dir / "node_classification.json").is_file():
        timed_command(classify_args(run_dir, labels, a.repeats), run_dir, env, cwd=REPO,
                      info_name="classify_info.json", dry_run=a.dry_run)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
