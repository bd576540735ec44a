#!/usr/bin/env python
"""Featurized entity types: a plain model against a featurized one (PBG's mean of feature rows,
and beyond PBG the flax encoder on top) on entities seen in training (valid) and on entities held
out of training entirely (test: cold start), on a generated KG and on BlogCatalog.

    nice -n 5 python experiments/featurized/run.py            # about 15 min on 2 loaded cores
    python experiments/featurized/run.py --dry-run            # print the commands only
    python experiments/featurized/run.py --only fkg           # one dataset (fkg or blogcatalog)

The datasets are written under RESULTS/data by data.py (see there: 10% of the entities held out).
A plain model has rows for the held-out entities (they are in the test split) but never trains
them, so it ranks them at chance; a featurized model embeds them from their features. Then
report.py prints the figures and writes results/results.csv and results/README.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import data_env, experiment_parser, relative_to, run_plan, run_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

COMMON = ["training.progress=false", "eval.protocols=[filtered]", "eval.splits=[valid,test]",
          "data.format=tsv", "data.train=train.tsv", "data.valid=valid.tsv", "data.test=test.tsv"]
FKG = ["data.name=fkg", "data.path=fkg", "model.operator=diagonal", "model.comparator=dot",
       "model.reciprocal=true", "model.dimension=32", "loss.name=softmax", "optimizer.lr=0.1",
       "training.num_epochs=20", "training.batch_size=1000", "negatives.num_batch_negs=50",
       "negatives.num_uniform_negs=50"]
BLOGCATALOG = ["+experiment=blogcatalog", "data.name=blogcatalog", "data.path=blogcatalog",
               "model.dimension=64", "training.num_epochs=5"]
FEATURIZED = ["entities.entity.featurized=true"]
# name -> (dataset, overrides)
RUNS = {
    "fkg_plain": ("fkg", FKG),
    "fkg_featurized": ("fkg", [*FKG, *FEATURIZED, "entities.entity.features=features.tsv"]),
    "fkg_encoder": ("fkg", [*FKG, *FEATURIZED, "entities.entity.features=features.tsv",
                            "entities.entity.encoder_hidden=64"]),
    "blogcatalog_plain": ("blogcatalog", BLOGCATALOG),
    "blogcatalog_groups": ("blogcatalog", [*BLOGCATALOG, *FEATURIZED,
                                           "entities.entity.features=features_groups.tsv"]),
    "blogcatalog_id_groups": ("blogcatalog", [*BLOGCATALOG, *FEATURIZED,
                                              "entities.entity.features=features_id_groups.tsv"]),
}


def plan(results: Path, extra: list[str], only: str | None = None) -> list[tuple[str, list[str], Path]]:
    data = relative_to(results, REPO) / "data"
    return [(name, [*COMMON, *over, f"data.root={data}", *extra],
             relative_to(results, REPO) / "runs" / name)
            for name, (dataset, over) in RUNS.items() if only in (None, dataset)]


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--only", choices=["fkg", "blogcatalog"], default=None)
    a = ap.parse_args(argv)
    steps = plan(a.results, a.overrides, a.only)
    if not a.dry_run:
        import data

        root = a.results / "data"
        if a.only in (None, "fkg"):
            data.feature_kg(root)
        if a.only in (None, "blogcatalog"):
            source = Path(data_env(REPO).get("JGRAPH_DATA", "data"))
            source = source if source.is_absolute() else REPO / source
            data.blogcatalog(root, source / "BlogCatalog")
    run_plan(steps, REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
