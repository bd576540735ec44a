#!/usr/bin/env python
"""Write results/README.md for node classification with jgraph embeddings: micro/macro-F1 per
training fraction against DeepWalk's published BlogCatalog numbers (and PBG's YouTube numbers for
reference), the commands and wall times, and plots.

    python experiments/pbg_youtube/report.py [--results experiments/pbg_youtube/results]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from jgraph.lab.plot import plot_runs, pyplot
from jgraph.lab.report import fmt, fmt_seconds, markdown_table, provenance
from jgraph.lab.runs import read_run

HERE = Path(__file__).resolve().parent
# DeepWalk on BlogCatalog, % of labelled nodes used for training -> F1 in % (Perozzi et al. 2014,
# Table 2; transcribed, check against the paper before quoting them elsewhere)
DEEPWALK = {
    0.1: (36.00, 21.30), 0.2: (38.20, 23.80), 0.3: (39.60, 25.30), 0.4: (40.30, 26.30),
    0.5: (41.00, 27.30), 0.6: (41.30, 27.60), 0.7: (41.50, 27.90), 0.8: (41.50, 28.20),
    0.9: (42.00, 28.90),
}
PBG_YOUTUBE = (48.0, 40.9)  # Lerer et al. 2019, Table 1: YouTube, micro / macro-F1 (%)
PROTOCOL = """\
Protocol (DeepWalk, Perozzi et al. 2014; PBG used it on YouTube, Lerer et al. 2019): embeddings are
trained on the whole graph without labels; a one-vs-rest L2-regularized logistic regression
(liblinear's objective, C=1; features standardized on the training nodes; fitted by L-BFGS in
`jgraph.cli.node_classification`, no scikit-learn) is trained on a random fraction of the labelled
users; every other user is given its k highest-scoring groups, k being its true number of groups;
micro-F1 (over all user-group decisions) and macro-F1 (mean over the 39 groups) are averaged
over random splits. BlogCatalog: 10,312 users, 333,983 friendships, 39 groups, 14,476 memberships.
PBG's YouTube numbers (1.1M users, 47 groups) are a different graph, listed for reference."""


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--results", type=Path, default=HERE / "results")
    a = ap.parse_args(argv)
    res = a.results
    run_dir = res / "runs" / "blogcatalog"
    nc_file = run_dir / "node_classification.json"
    if not nc_file.is_file():
        print(f"{nc_file}: not there yet (python experiments/pbg_youtube/run.py)", file=sys.stderr)
        return 1
    nc = json.loads(nc_file.read_text())
    run = read_run(run_dir)
    classify = json.loads((run_dir / "classify_info.json").read_text()) \
        if (run_dir / "classify_info.json").is_file() else {}
    rows = []
    fracs = sorted(nc["fractions"], key=float)
    for f in fracs:
        r = nc["fractions"][f]
        dw = DEEPWALK.get(round(float(f), 2))
        rows.append([f"{float(f):.0%}",
                     f"**{100 * r['micro_f1']['mean']:.2f}** ± {100 * r['micro_f1']['std']:.2f}",
                     f"{dw[0]:.2f}" if dw else "–",
                     f"**{100 * r['macro_f1']['mean']:.2f}** ± {100 * r['macro_f1']['std']:.2f}",
                     f"{dw[1]:.2f}" if dw else "–"])
    table = markdown_table(["labelled users for training", "jgraph micro-F1 (%)", "DeepWalk micro-F1 (%)",
                            "jgraph macro-F1 (%)", "DeepWalk macro-F1 (%)"], rows)
    cfg = (run.metrics or {}).get("config", {})
    lines = ["# Node classification with jgraph embeddings (PBG's YouTube protocol, on BlogCatalog)", "",
             "Written by `python experiments/pbg_youtube/report.py` from the run below (made by "
             "`python experiments/pbg_youtube/run.py`).", "", PROTOCOL, "",
             f"## BlogCatalog, d={cfg.get('model', {}).get('dimension')}, "
             f"{nc['repeats']} random splits per fraction", "", table, "",
             f"For reference, PBG on YouTube (Lerer et al. 2019, Table 1): micro-F1 {PBG_YOUTUBE[0]}, "
             f"macro-F1 {PBG_YOUTUBE[1]} (%).", ""]
    f1_png = plot_f1(nc, res / "blogcatalog_f1.png")
    curves = plot_runs([run], res / "blogcatalog_curves.png", ["BlogCatalog"],
                       "embedding training (all edges)") if run.history else None
    lines += [f"![F1 against the training fraction]({f1_png.name})", ""]
    if curves:
        lines += [f"![training curves]({curves.name})", ""]
    lines += ["### How it was made", "", "Embeddings:", "", provenance(run, res)]
    if classify:
        lines += ["Classification:", "", f"- command: `{classify.get('command')}`",
                  f"- wall time {fmt_seconds(classify.get('wall_seconds'))}", ""]
    lines += [f"Labelled users: {fmt(nc['nodes'])}; groups: {nc['labels']}; C = {nc['c']}; "
              f"standardized features: {str(nc['standardize']).lower()}.", ""]
    out = res / "README.md"
    out.write_text("\n".join(lines))
    print("wrote", out)
    return 0


def plot_f1(nc: dict, out: Path) -> Path:
    """Micro/macro-F1 against the training fraction, jgraph (error bars) vs DeepWalk (dashed)."""
    plt = pyplot()
    fracs = sorted(nc["fractions"], key=float)
    xs = [float(f) for f in fracs]
    fig, ax = plt.subplots(figsize=(6.0, 4.0))
    for key, color, idx in (("micro_f1", "C0", 0), ("macro_f1", "C1", 1)):
        ys = [100 * nc["fractions"][f][key]["mean"] for f in fracs]
        es = [100 * nc["fractions"][f][key]["std"] for f in fracs]
        ax.errorbar(xs, ys, yerr=es, marker="o", ms=4, color=color, capsize=3,
                    label=f"jgraph {key.replace('_f1', '')}-F1")
        dw = [(x, DEEPWALK[round(x, 2)][idx]) for x in xs if round(x, 2) in DEEPWALK]
        if dw:
            ax.plot(*zip(*dw, strict=True), "--", color=color, alpha=0.7,
                    label=f"DeepWalk {key.replace('_f1', '')}-F1")
    ax.set(xlabel="fraction of labelled users used for training", ylabel="F1 (%)",
           title="BlogCatalog node classification")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


if __name__ == "__main__":
    sys.exit(main())
