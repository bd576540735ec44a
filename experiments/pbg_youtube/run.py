#!/usr/bin/env python
"""PBG's YouTube-style node classification (embeddings as the only features of a linear
classifier; micro/macro-F1), on BlogCatalog's 39 interest groups: train, classify, report.

    python experiments/pbg_youtube/run.py                  # about 5 min on 2 cores
    python experiments/pbg_youtube/run.py --repeats 3      # fewer random splits per fraction
    python experiments/pbg_youtube/run.py --dry-run        # print the commands only
    python experiments/pbg_youtube/run.py model.dimension=64      # overrides for the training run

1. Embeddings are trained on every edge (the DeepWalk protocol embeds the whole graph; labels are
   never seen): conf/experiment/blogcatalog.yaml (dot, softmax, 50 + 50 negatives, d=128, lr 0.1,
   20 epochs) with data.train=edges.tsv.gz and no held-out edges.
2. `python -m jgraph.cli.node_classification` fits a one-vs-rest logistic regression on a random 10%,
   20%, ..., 90% of the users, predicts each other user's k top groups (k = its true number of
   groups), and averages micro/macro-F1 over 10 random splits.
Run directory: results/runs/blogcatalog/ (run_info.json and classify_info.json: the commands and
their wall times; finished steps are skipped unless --fresh).
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import data_env, experiment_parser, relative_to, run_plan, run_report, timed_command

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
FRACTIONS = ["0.1", "0.2", "0.3", "0.4", "0.5", "0.6", "0.7", "0.8", "0.9"]
TRAIN = ["+experiment=blogcatalog", "data.train=edges.tsv.gz", "data.valid=null", "data.test=null",
         "eval.splits=[]"]


def plan(results: Path, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    return [("blogcatalog", [*TRAIN, *extra], relative_to(results, REPO) / "runs" / "blogcatalog")]


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
