#!/usr/bin/env python
"""Print the featurized experiment's figures and write results/results.csv and results/README.md:
filtered MRR and Hits@10 of each run on seen entities (valid) and on held-out entities (test:
cold start), with chance (the MRR of a random ranking) beside them.

    python experiments/featurized/report.py [--results experiments/featurized/results]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jgraph.lab.report import fmt_seconds, markdown_table, provenance, write_csv
from jgraph.lab.runs import read_run

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
HEADER = ["run", "dataset", "model", "seen_mrr", "seen_hits10", "seen_auc", "cold_mrr", "cold_hits10",
          "cold_auc", "chance_mrr", "train_seconds", "wall_seconds"]
MODEL = {"plain": "plain rows (no features)", "featurized": "featurized: mean of features (PBG)",
         "encoder": "featurized + flax MLP encoder", "groups": "featurized: mean of group features",
         "id_groups": "featurized: own-id feature + groups (held-out: groups only)"}


def rows(results: Path) -> list[list]:
    from run import RUNS

    out = []
    for name, (dataset, _) in RUNS.items():
        run = read_run(results / "runs" / name)
        if not run.finished:
            continue
        ev = run.metrics["eval"]
        avg = {s: ev[s]["filtered"]["avg"] for s in ("valid", "test")}
        out.append([name, dataset, MODEL[name.split("_", 1)[1]],
                    *(avg[s][k] for s in ("valid", "test") for k in ("mrr", "hits@10", "auc")),
                    run.metrics.get("chance_mrr"), run.metrics.get("train_seconds"), run.wall_seconds])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    table = rows(a.results)
    if not table:
        print(f"{a.results}: no finished run yet (python experiments/featurized/run.py)", file=sys.stderr)
        return 1
    write_csv(a.results / "results.csv", HEADER,
              [[round(v, 4) if isinstance(v, float) else v for v in r] for r in table])
    shown = [[*r[:1], *r[3:10], fmt_seconds(r[11])] for r in table]
    head = ["run", "seen MRR", "seen Hits@10", "seen AUC", "cold-start MRR", "cold-start Hits@10",
            "cold-start AUC", "chance MRR", "wall"]
    text = markdown_table(head, shown, digits=4)
    print(text)
    from run import RUNS

    lines = ["# Featurized entity types: seen vs cold-start entities\n",
             "Filtered MRR (and AUC: the share of candidates ranked below the answer) on valid "
             "(edges among entities seen in training) and on test (edges between "
             "an entity held out of training entirely and a seen one: cold start). A plain model "
             "has untrained rows for held-out entities (chance); a featurized model embeds them from "
             "their features. See `../README.md` and `../data.py` for the datasets.\n", text,
             "\n## Runs\n"]
    for r in table:
        lines += [f"### {r[0]}: {MODEL[r[0].split('_', 1)[1]]}\n",
                  provenance(read_run(a.results / "runs" / r[0]), REPO)]
    del RUNS
    (a.results / "README.md").write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
