"""`python -m jgraph.cli.evaluate RUN`: link-prediction metrics of a trained run.

    python -m jgraph.cli.evaluate outputs/fb15k237/2026-11-22_10-00-00
    python -m jgraph.cli.evaluate RUN --split test --protocol raw filtered sampled --max-edges 5000
    python -m jgraph.cli.evaluate RUN --set data.root=/data eval.ties=pessimistic

RUN is a run directory (holding checkpoint/) or a checkpoint location (path or kvstore URL).
Metrics are printed and written as JSON (default: RUN/eval_<split>.json). Ties are ranked by
`eval.ties` (realistic by default; see jgraph/core/metrics.py).
"""

from __future__ import annotations

import json
import logging
import sys
import time

from jgraph.cli.main import run_arguments, run_command
from jgraph.config import EvalConfig
from jgraph.errors import command_parser

log = logging.getLogger("jgraph")


def evaluate(path: str, splits: list[str], protocols: list[str], max_edges: int | None,
             overrides: list[str], allow_plugins: list[str] | tuple[str, ...] = ()) -> dict:
    """Metrics of the run at `path` on each split (the run's data files are read for the edges)."""
    from jgraph.assembly import relation_groups
    from jgraph.errors import OptionError
    from jgraph.ranking import check_full_ranking_fits, full_ranking, sampled_ranking
    from jgraph.trained import load_run, open_run

    if max_edges is not None and max_edges < 1:
        raise OptionError(f"--max-edges must be >= 1, got {max_edges}")
    if not any(p in ("raw", "filtered") for p in protocols):  # sampled only: streamed, one
        return _evaluate_streamed(open_run(path, overrides, allow_plugins), splits, max_edges)
    opened = open_run(path, overrides, allow_plugins)  # partition by partition, however large
    opened.close()
    check_full_ranking_fits([tp.count for tp in opened.layout.types], opened.model.dimension)
    run = load_run(path, overrides, with_data=True, allow_plugins=allow_plugins)
    missing = [s for s in splits if s not in run.ds.splits]
    if missing:
        raise OptionError(f"{path}: the data has no {', '.join(missing)} split "
                          f"(it has {', '.join(run.ds.splits)})")
    ecfg: EvalConfig = run.cfg.eval
    results: dict = {}
    for split in splits:
        t0 = time.perf_counter()
        full = [p for p in protocols if p in ("raw", "filtered")]
        res = full_ranking(run.model, run.params, run.emb, run.offsets, run.ds, split, ecfg, full,
                           max_edges) if full else {}
        if "sampled" in protocols:
            res["sampled"] = sampled_ranking(run.model, run.params, run.emb, run.offsets, run.ds, split,
                                             ecfg, relation_groups(run.cfg, run.ds), max_edges)
        res["seconds"] = time.perf_counter() - t0
        results[split] = res
    from jgraph.core.metrics import chance_mrr
    from jgraph.train.evaluation import degree_baselines

    chance = chance_mrr(max(run.ds.num_entities(t) for t in run.ds.entity_types))
    return {"checkpoint_version": run.version, "progress": run.progress, "chance_mrr": chance,
            "degree_baseline_mrr": degree_baselines(results), "eval": results}


def _evaluate_streamed(run, splits: list[str], max_edges: int | None) -> dict:
    """The sampled protocol read partition by partition (ranking.streamed_sampled_ranking)."""
    from jgraph.assembly import relation_groups
    from jgraph.core.metrics import chance_mrr
    from jgraph.errors import OptionError
    from jgraph.ranking import streamed_sampled_ranking

    try:
        ds = run.data()
        missing = [s for s in splits if s not in ds.splits]
        if missing:
            raise OptionError(f"{run.location}: the data has no {', '.join(missing)} split "
                              f"(it has {', '.join(ds.splits)})")
        results: dict = {}
        for split in splits:
            t0 = time.perf_counter()
            res = {"sampled": streamed_sampled_ranking(
                run.model, run.params, run.layout, run.partition, ds, split, run.cfg.eval,
                relation_groups(run.cfg, ds), max_edges)}
            res["seconds"] = time.perf_counter() - t0
            results[split] = res
        m = run.store.manifest
        chance = chance_mrr(max(tp.count for tp in run.layout.types))
        return {"checkpoint_version": run.store.version, "progress": dict(m.get("progress", {})),
                "chance_mrr": chance, "degree_baseline_mrr": {}, "eval": results}
    finally:
        run.close()


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.cli.evaluate", __doc__)
    run_arguments(p)
    p.add_argument("--split", nargs="+", default=["test"])
    p.add_argument("--protocol", nargs="+", default=["filtered", "raw"],
                   choices=["filtered", "raw", "sampled"])
    p.add_argument("--max-edges", type=int, default=None, help="evaluate a random subset")
    p.add_argument("--out", default=None, help="JSON output (default RUN/eval_<splits>.json)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)
    res = evaluate(args.run, args.split, args.protocol, args.max_edges, args.set, args.allow_plugin)
    from jgraph.train.evaluation import baseline_line, relation_lines

    for split, r in res["eval"].items():
        for proto in ("filtered", "raw", "sampled", "degree_baseline"):
            if proto in r:
                for side in ("lhs", "rhs", "avg"):
                    m = r[proto][side]
                    share = m.get("self_outranks_share")
                    own = "" if share is None else f"  self-outranks {share:.4f}"
                    print(f"{split:5s} {proto:8s} {side:3s}  MRR {m['mrr']:.4f}  MR {m['mr']:8.1f}  "
                          + "  ".join(f"{k.replace('hits', 'H')} {v:.4f}" for k, v in m.items()
                                      if k.startswith("hits@"))
                          + f"  AUC {m['auc']:.4f}{own}  n={int(m['count'])}")
        for line in baseline_line(split, r, res["chance_mrr"]) + relation_lines(split, r):
            print(line)
    from jgraph.trained import run_dir_of

    out = args.out or str(run_dir_of(args.run) / f"eval_{'_'.join(args.split)}.json")
    with open(out, "w") as f:
        json.dump(res, f, indent=1)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.evaluate", main))
