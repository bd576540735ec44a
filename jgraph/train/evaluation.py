"""The training job's evaluation: the periodic ranking of `eval.every_split`, the final evaluation
of every split in `eval.splits`, and the lines that report it (each split beside chance and the
degree baseline, the self-outranks share, the weakest and strongest relations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from jgraph.config import EvalConfig
from jgraph.data.dataset import Dataset
from jgraph.ranking import full_ranking, sampled_ranking


def periodic(model: Any, params: dict, emb: Any, offsets: np.ndarray, ds: Dataset,
             ecfg: EvalConfig) -> dict[str, float]:
    """History keys of one periodic evaluation: `{split}_mrr` and `{split}_hits@10` (filtered,
    on up to eval.every_max_edges edges)."""
    split = ecfg.every_split
    res = full_ranking(model, params, emb, offsets, ds, split, ecfg, ["filtered"], ecfg.every_max_edges)
    avg = res["filtered"]["avg"]
    return {f"{split}_mrr": avg["mrr"], f"{split}_hits@10": avg.get("hits@10")}


def evaluate_splits(model: Any, params: dict, emb: Any, offsets: np.ndarray, ds: Dataset,
                    ecfg: EvalConfig, group_of_rel: np.ndarray | None,
                    log: Any = None) -> dict[str, dict[str, Any]]:
    """metrics.json's "eval": {split: {protocol: ...}} of every split in eval.splits the data has
    (full ranking's protocols plus "degree_baseline", and "sampled" if asked)."""
    evaluation: dict[str, dict[str, Any]] = {}
    for split in ecfg.splits:
        if split not in ds.splits:
            if log is not None:
                log.warning("eval: no %s split, skipped", split)
            continue
        full = [p for p in ecfg.protocols if p in ("raw", "filtered")]
        res = full_ranking(model, params, emb, offsets, ds, split, ecfg, full, ecfg.max_edges) if full else {}
        if "sampled" in ecfg.protocols:
            res["sampled"] = sampled_ranking(model, params, emb, offsets, ds, split, ecfg, group_of_rel,
                                             ecfg.max_edges)
        evaluation[split] = res
    return evaluation


def gather_refused(layout: Any, cfg: Any) -> str | None:
    """Why the final evaluation cannot gather every partition (ranking.check_full_ranking_fits:
    more than half the memory available), with what to run instead; None when it fits."""
    from jgraph.errors import OptionError
    from jgraph.ranking import check_full_ranking_fits

    try:
        check_full_ranking_fits([tp.count for tp in layout.types], cfg.model.dimension)
    except OptionError as e:
        return f"{e} (after training: jgraph evaluate RUN --protocol sampled)"
    return None


def degree_baselines(evaluation: dict[str, dict[str, Any]]) -> dict[str, float]:
    """{split: the degree baseline's MRR} (metrics.json's "degree_baseline_mrr")."""
    return {s: r["degree_baseline"]["avg"]["mrr"] for s, r in evaluation.items()
            if r.get("degree_baseline", {}).get("avg")}


def summary_lines(evaluation: dict[str, dict[str, Any]], chance: float | None = None) -> list[str]:
    """Lines for the log: per split and protocol MRR / MR / Hits@1 / Hits@10 / AUC (and the share
    of queries whose own entity outranks the answer), then `baseline_line` and `relation_lines`."""
    lines = []
    for split, res in evaluation.items():
        for proto, r in res.items():
            a = r.get("avg", {}) if isinstance(r, dict) else {}
            if not a:
                continue
            own = f"  self-outranks {a['self_outranks_share']:.4f}" if "self_outranks_share" in a else ""
            lines.append(f"{split} {proto}: MRR {a['mrr']:.4f}  MR {a['mr']:.1f}  Hits@1 "
                         f"{a.get('hits@1', 0.0):.4f}  Hits@10 {a.get('hits@10', 0.0):.4f}  AUC "
                         f"{a['auc']:.4f}{own}  ({int(a['count'])} queries)")
        lines += baseline_line(split, res, chance) + relation_lines(split, res)
    return lines


def baseline_line(split: str, res: dict[str, Any], chance: float | None = None) -> list[str]:
    """'valid: MRR 0.0119 = 0.28x the degree baseline 0.0423 (...x chance)', if both are there."""
    base = res.get("degree_baseline", {}).get("avg", {}).get("mrr")
    main = next((res[p]["avg"]["mrr"] for p in ("filtered", "raw", "sampled")
                 if res.get(p, {}).get("avg")), None)
    if base is None or main is None:
        return []
    return [f"{split}: MRR {main:.4f} = {main / max(base, 1e-12):.2f}x the degree baseline {base:.4f}"
            + (f", {main / chance:.0f}x chance {chance:.4f}" if chance else "")]


def relation_lines(split: str, res: dict[str, Any], worst: int = 5, best: int = 3,
                   min_queries: int = 10) -> list[str]:
    """The `worst` and `best` relations by MRR (filtered, else raw) among those with at least
    `min_queries` queries, with Hits@1 and the self-outranks share."""
    proto = next((p for p in ("filtered", "raw") if "per_relation" in res.get(p, {})), None)
    if proto is None:
        return []
    rels = sorted(((m["mrr"], name, m) for name, m in res[proto]["per_relation"].items()
                   if m["count"] >= min_queries), key=lambda x: x[0])
    if len(rels) <= worst + best:
        return []
    return [f"{split} {proto} {label} relations: " + "; ".join(
        f"{name} MRR {m['mrr']:.3f} H@1 {m.get('hits@1', 0.0):.3f} self-outranks "
        f"{m['self_outranks_share']:.2f} (n={m['count']})" for _, name, m in group)
        for label, group in (("weakest", rels[:worst]), ("strongest", rels[-best:][::-1]))]
