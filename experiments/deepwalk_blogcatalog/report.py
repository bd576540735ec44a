#!/usr/bin/env python
"""Print and write the DeepWalk-on-BlogCatalog table: jgraph's micro/macro-F1 per training fraction
beside DeepWalk's published ones (Perozzi et al. 2014, Table 2, kept in experiments/pbg_youtube),
with the training and classification wall times: results/f1.csv, results/README.md, a plot.

    python experiments/deepwalk_blogcatalog/report.py [--results experiments/deepwalk_blogcatalog/results]
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from jgraph.lab.report import fmt_seconds, markdown_table, provenance, write_csv
from jgraph.lab.runs import read_run

HERE = Path(__file__).resolve().parent


def _youtube_report():
    """experiments/pbg_youtube/report.py: DeepWalk's published table, the protocol, the F1 plot."""
    path = HERE.parent / "pbg_youtube" / "report.py"
    spec = importlib.util.spec_from_file_location("pbg_youtube_report", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    res, yt = a.results, _youtube_report()
    run_dir = res / "runs" / "deepwalk"
    nc_file = run_dir / "node_classification.json"
    if not nc_file.is_file():
        print(f"{nc_file}: not there yet (python experiments/deepwalk_blogcatalog/run.py)", file=sys.stderr)
        return 1
    nc = json.loads(nc_file.read_text())
    run = read_run(run_dir)
    m = run.metrics or {}
    classify = json.loads((run_dir / "classify_info.json").read_text()) \
        if (run_dir / "classify_info.json").is_file() else {}
    rows, csv_rows = [], []
    for f in sorted(nc["fractions"], key=float):
        r = nc["fractions"][f]
        dw = yt.DEEPWALK.get(round(float(f), 2), (None, None))
        mi, ma = 100 * r["micro_f1"]["mean"], 100 * r["macro_f1"]["mean"]
        rows.append([f"{float(f):.0%}", f"**{mi:.2f}** ± {100 * r['micro_f1']['std']:.2f}", dw[0],
                     f"**{ma:.2f}** ± {100 * r['macro_f1']['std']:.2f}", dw[1]])
        csv_rows.append([f, round(mi, 2), round(100 * r["micro_f1"]["std"], 2), dw[0], round(ma, 2),
                         round(100 * r["macro_f1"]["std"], 2), dw[1], nc["repeats"]])
    table = markdown_table(["labelled users for training", "jgraph micro-F1 (%)", "DeepWalk micro-F1 (%)",
                            "jgraph macro-F1 (%)", "DeepWalk macro-F1 (%)"], rows)
    write_csv(res / "f1.csv", ["train_fraction", "micro_f1", "micro_f1_std", "deepwalk_micro_f1",
                               "macro_f1", "macro_f1_std", "deepwalk_macro_f1", "splits"], csv_rows)
    print(table)
    walks = m.get("config", {}).get("data", {}).get("walks", {})
    times = (f"Training {fmt_seconds(m.get('train_seconds'))} (walks included), whole run "
             f"{fmt_seconds(run.wall_seconds)}; classification {fmt_seconds(classify.get('wall_seconds'))}.")
    print(times)
    lines = ["# DeepWalk on BlogCatalog: node embeddings from random walks", "",
             "Written by `python experiments/deepwalk_blogcatalog/report.py` from the run below (made by "
             "`python experiments/deepwalk_blogcatalog/run.py`).", "", yt.PROTOCOL, "",
             f"## BlogCatalog, walks {walks.get('per_node')} per node, length {walks.get('length')}, "
             f"window {walks.get('window')}; {nc['repeats']} random splits per fraction", "", table, "",
             times, "", f"![F1 against the training fraction]({yt.plot_f1(nc, res / 'f1.png').name})", "",
             "### How it was made", "", "Embeddings:", "", provenance(run, res)]
    if classify:
        lines += ["Classification:", "", f"- command: `{classify.get('command')}`",
                  f"- wall time {fmt_seconds(classify.get('wall_seconds'))}", ""]
    (res / "README.md").write_text("\n".join(lines))
    print("wrote", res / "README.md", "and", res / "f1.csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
