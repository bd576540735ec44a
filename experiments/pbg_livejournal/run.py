#!/usr/bin/env python
"""PyTorch-BigGraph's LiveJournal protocol (75/25 edge split, sampled ranking, MRR / MR / Hits@10),
run on BlogCatalog here and on LiveJournal where it can be downloaded; then the report.

    python experiments/pbg_livejournal/run.py                       # BlogCatalog: about 15 min on 2 cores
    python experiments/pbg_livejournal/run.py --data livejournal    # SNAP soc-LiveJournal1 (download first)
    python experiments/pbg_livejournal/run.py --eval-negs 50        # rank among 50 + 50 negatives instead
    python experiments/pbg_livejournal/run.py --dry-run             # print the command only

The training recipe is conf/experiment/livejournal.yaml (PBG's livejournal_config.py: d=1024, cos,
margin ranking 0.1, 50 + 50 negatives, lr 0.001, 30 epochs). For BlogCatalog the whole edge list is
split 75/25 at random as PBG splits LiveJournal (data.test_fraction=0.25 of edges.tsv.gz); its
edges are undirected, so the training edges are used in both directions (data/blogcatalog.yaml).
Run directory: results/runs/<data>/ (a finished run is skipped unless --fresh).
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import experiment_parser, relative_to, run_plan, run_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DATA_OVERRIDES = {
    # all 333,983 edges, 25% held out at random (the split files of BlogCatalog/ are 90/5/5)
    "blogcatalog": ["data=blogcatalog", "data.train=edges.tsv.gz", "data.valid=null", "data.test=null",
                    "data.test_fraction=0.25",
                    # a curve to read: filtered MRR of 2000 test edges every 5 epochs (monitoring only)
                    "eval.every_epochs=5", "eval.every_split=test", "eval.every_max_edges=2000"],
    "livejournal": [],  # data/livejournal.yaml already splits 75/25 (data.test_fraction)
}


def plan(data: str, results: Path, eval_negs: int, extra: list[str]) -> list[tuple[str, list[str], Path]]:
    overrides = ["+experiment=livejournal", *DATA_OVERRIDES[data],
                 f"eval.num_batch_negs={eval_negs}", f"eval.num_uniform_negs={eval_negs}", *extra]
    return [(data, overrides, relative_to(results, REPO) / "runs" / data)]


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--data", default="blogcatalog", choices=list(DATA_OVERRIDES))
    ap.add_argument("--eval-negs", type=int, default=1000,
                    help="batch and uniform negatives each in the sampled ranking (default 1000 + 1000, "
                         "PBG's eval_num_batch_negs / eval_num_uniform_negs)")
    a = ap.parse_args(argv)
    run_plan(plan(a.data, a.results, a.eval_negs, a.overrides), REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
