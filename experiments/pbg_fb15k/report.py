#!/usr/bin/env python
"""Write results/README.md for PBG's FB15k table: published vs jgraph, commands, wall times, curves.

    python experiments/pbg_fb15k/report.py [--results experiments/pbg_fb15k/results]

Reads results/runs/<data>/<model>/ (metrics.json, metrics.jsonl, run_info.json) for every dataset
found; writes results/README.md, results/<data>_curves.png (loss, validation MRR every 5 epochs,
throughput; both models overlaid) and results/<data>_bars.png (published vs jgraph).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from jgraph.lab.plot import plot_bars, plot_runs
from jgraph.lab.report import comparison_rows, markdown_table, provenance
from jgraph.lab.runs import finished_runs

HERE = Path(__file__).resolve().parent
MODELS = {"complex": "ComplEx", "transe": "TransE"}
DATA_NAMES = {"fb15k": "FB15k", "fb15k237": "FB15k-237"}
METRICS = ["test.filtered.mrr", "test.filtered.hits@1", "test.filtered.hits@10", "test.filtered.mr",
           "test.raw.mrr"]
HEADER = ["model", "system (source)", "data", "filtered MRR", "filtered Hits@1", "filtered Hits@10",
          "filtered MR", "raw MRR"]
PBG = "PBG, published (Lerer et al. 2019, Table 2; Hits@1, MR: PBG README run)"
# Published numbers (docs: ../shared/docs/pbg-reference.md section 6).
PUBLISHED = {
    "complex": [
        {"cells": ["ComplEx", PBG, "FB15k"],
         "values": dict(zip(METRICS, [0.790, 0.739, 0.872, 65.5, 0.242], strict=True))},
        {"cells": ["ComplEx", "ComplEx-N3, reciprocal, 1-vs-all, d=2000 (Lacroix et al. 2018)", "FB15k"],
         "values": {"test.filtered.mrr": 0.86, "test.filtered.hits@10": 0.91}},
        {"cells": ["ComplEx", "ComplEx-N3, reciprocal, 1-vs-all, d=2000 (kbc README)", "FB15k-237"],
         "values": {"test.filtered.mrr": 0.37, "test.filtered.hits@1": 0.27, "test.filtered.hits@10": 0.56}},
        {"cells": ["ComplEx", "LibKGE ComplEx (Ruffinelli et al. 2020)", "FB15k-237"],
         "values": {"test.filtered.mrr": 0.348, "test.filtered.hits@10": 0.534}},
        {"cells": ["ComplEx", "PBG with these settings, 10 epochs, 2 CPU cores (measured)", "FB15k-237"],
         "values": {"test.filtered.mrr": 0.285, "test.filtered.hits@10": 0.479}},
    ],
    "transe": [
        {"cells": ["TransE", PBG, "FB15k"],
         "values": {"test.filtered.mrr": "≈0.59", "test.filtered.hits@10": 0.785, "test.raw.mrr": 0.265}},
        {"cells": ["TransE", "TransE as reported by the PBG paper (Bordes et al. 2013)", "FB15k"],
         "values": {"test.filtered.hits@10": 0.749}},
        {"cells": ["TransE", "LibKGE TransE (Ruffinelli et al. 2020)", "FB15k-237"],
         "values": {"test.filtered.mrr": 0.313, "test.filtered.hits@10": 0.497}},
    ],
}
PROTOCOL = """\
Protocol (PBG's `examples/fb15k.py`): train on train, evaluate the test set by full ranking against
every entity, both sides (head and tail replaced), averaged; *filtered*: the other true answers
from train + valid + test are removed first; *raw*: nothing removed. Ties count half (jgraph's
`eval.ties=realistic`; PBG counts them all, which differs only for exactly equal scores).
Settings (conf/experiment/fb15k.yaml = PBG's `fb15k_config_cpu.py`): ComplEx d=400, reciprocal
relations, dot, softmax over 50 batch + 1000 uniform negatives, Adagrad lr 0.1, N3 1e-3, batch 1000,
50 epochs. TransE (conf/experiment/pbg_fb15k_transe.yaml): the same with the translation operator
and the l2 comparator, no N3 (PBG published no TransE config). Validation MRR on 3000 edges every
5 epochs is drawn in the curves.
FB15k-237 is FB15k without its test-leaking inverse relations: its numbers are far lower, so the
FB15k rows are the target only when `--data fb15k` is run; for FB15k-237 compare with the
FB15k-237 rows."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    res = a.results
    datasets = [d for d in DATA_NAMES if (res / "runs" / d).is_dir()]
    if not datasets:
        print(f"{res}/runs: no runs yet (python experiments/pbg_fb15k/run.py)", file=sys.stderr)
        return 1
    lines = ["# PyTorch-BigGraph's FB15k table, reproduced with jgraph", "",
             "Written by `python experiments/pbg_fb15k/report.py` from the runs below "
             "(made by `python experiments/pbg_fb15k/run.py`).", "", PROTOCOL, ""]
    for data in datasets:
        runs = finished_runs(res / "runs" / data, MODELS)
        name = DATA_NAMES[data]
        lines += [f"## {name}", ""]
        rows = []
        for m in MODELS:  # each model's published rows, then its jgraph row
            measured = [([MODELS[m], f"**jgraph** ({len(runs[m].history)} epochs, this machine)", name],
                         runs[m])] if m in runs else []
            rows += comparison_rows(PUBLISHED[m], measured, METRICS)
        lines.append(markdown_table(HEADER, rows))
        if runs:
            curves = plot_runs(list(runs.values()), res / f"{data}_curves.png",
                               [MODELS[m] for m in runs], f"{name}: PBG settings in jgraph")
            refs = {}
            for m in runs:  # the first published row on this dataset, else PBG's FB15k row
                p = next((q for q in PUBLISHED[m] if q["cells"][2] == name), PUBLISHED[m][0])
                refs[f"{MODELS[m]}: {p['cells'][1].split(' (')[0]}, {p['cells'][2]}"] = p["values"]
            bars = plot_bars({f"{MODELS[m]}: jgraph, {name}": r for m, r in runs.items()}, refs,
                             METRICS[:3] + METRICS[4:], res / f"{data}_bars.png", f"{name}: test set")
            lines += ["", f"![learning curves]({curves.name})", "",
                      f"![published vs jgraph]({bars.name})", ""]
        for m, r in runs.items():
            lines += [f"### {MODELS[m]} on {name}: how it was made", "", provenance(r, res)]
    out = res / "README.md"
    out.write_text("\n".join(lines))
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
