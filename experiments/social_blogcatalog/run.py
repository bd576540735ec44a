#!/usr/bin/env python
"""Social-graph recipes against the degree baseline: BlogCatalog and two generated social-like graphs
(graphs.py: `coauthor`, co-authorship cliques with mild hubs; `hubs`, heavy hubs), each trained
with the variants below; then the report (report.py: a table and results.csv with test filtered
MRR, Hits@10, AUC, the degree baseline the evaluator prints, their ratio and the wall time).

    python experiments/social_blogcatalog/run.py                          # every graph, every variant
    python experiments/social_blogcatalog/run.py --graphs blogcatalog --variants pbg logq
    python experiments/social_blogcatalog/run.py --dry-run                # print the commands only

Every run is `+experiment=blogcatalog` (d=128, dot, softmax, 50 batch + 50 uniform negatives and
the query's own entity, lr 0.1, 20 epochs, the query excluded from the ranking; the recipe itself is
the `logq_bias` variant) with the variant's overrides;
the generated graphs replace its data (`data.root` = the generated folder). Run directories:
results/runs/<graph>/<variant>/ (a finished run is skipped unless --fresh).
"""

from __future__ import annotations

import sys
from pathlib import Path

from jgraph.lab.runs import experiment_parser, relative_to, run_plan, run_report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
BASE = ["+experiment=blogcatalog", "eval.protocols=[filtered]", "training.progress=false"]
VARIANTS = {  # name -> overrides on top of BASE
    "pbg": ["negatives.logq_correction=false", "model.bias=false"],  # the recipe before issue 30
    "logq": ["negatives.logq_correction=true", "model.bias=false"],
    "logq_bias": ["negatives.logq_correction=true", "model.bias=true"],
    "logq_bias_seed1": ["negatives.logq_correction=true", "model.bias=true", "training.seed=1"],
    # more negatives per chunk: 200 uniform ones (the corrected softmax then nearer the full one)
    "logq_bias_u200": ["negatives.logq_correction=true", "model.bias=true",
                       "negatives.num_uniform_negs=200"],
    # half the uniform negatives drawn by degree (harder ones; log-Q corrects their count too)
    "logq_bias_deg": ["negatives.logq_correction=true", "model.bias=true",
                      "negatives.degree_fraction=0.5"],
    # without the query's own entity as a training negative (on by default, issue 30): with dot
    # products nothing else keeps a node from being its own best match, and its neighbours' too
    "logq_bias_noself": ["negatives.logq_correction=true", "model.bias=true",
                         "negatives.self_negative=false"],
}
GENERATED = ("coauthor", "hubs")
GRAPHS = ("blogcatalog", *GENERATED)


def data_overrides(graph: str, graph_dir: Path) -> list[str]:
    if graph == "blogcatalog":
        return []
    return [f"data.root={relative_to(graph_dir, REPO)}", f"data.path={graph}", f"data.name={graph}"]


def plan(graphs: list[str], variants: list[str], results: Path, graph_dir: Path, extra: list[str]
         ) -> list[tuple[str, list[str], Path]]:
    return [(f"{g}/{v}", [*BASE, *data_overrides(g, graph_dir), *VARIANTS[v], *extra],
             relative_to(results, REPO) / "runs" / g / v) for g in graphs for v in variants]


def main(argv: list[str] | None = None) -> int:
    ap = experiment_parser(__doc__, HERE)
    ap.add_argument("--graphs", nargs="+", default=list(GRAPHS), choices=GRAPHS)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--graph-dir", type=Path, default=None,
                    help="where the generated graphs are written (default: RESULTS/graphs)")
    a = ap.parse_args(argv)
    graph_dir = (a.graph_dir or a.results / "graphs").resolve()
    if not a.dry_run and any(g in GENERATED and not (graph_dir / g / "test.tsv.gz").is_file()
                             for g in a.graphs):
        import importlib.util

        spec = importlib.util.spec_from_file_location("social_graphs", HERE / "graphs.py")
        graphs = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(graphs)
        graphs.main(["--out", str(graph_dir)])
    run_plan(plan(a.graphs, a.variants, a.results, graph_dir, a.overrides), REPO, a.dry_run, a.fresh)
    if a.dry_run:
        return 0
    return run_report(HERE, a.results)


if __name__ == "__main__":
    sys.exit(main())
