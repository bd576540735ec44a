"""Ranking metrics: MRR, MR, Hits@k and AUC, accumulated as sums and reported per side and averaged.

Rank of a true entity = 1 + (#candidates scoring higher) + a share of the candidates scoring
exactly the same, by `ties`:
  realistic   (default) half of the ties count against it: the expected rank of a random order
  pessimistic every tie counts against it (PBG's rule; rank = 1 + #(score >= positive))
  optimistic  no tie counts
In the filtered protocol the other known true entities (train + valid + test) are removed from
the candidates first; in the raw protocol they stay.
AUC of one query = the fraction of its (non-removed) negatives scoring below the positive
(ties: one half), i.e. 1 - (rank - 1) / (candidates - 1) under the realistic rule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

SIDES = ("lhs", "rhs")  # lhs: the head is replaced (?, r, t); rhs: the tail (h, r, ?)
TIE_SHARE = {"realistic": 0.5, "pessimistic": 1.0, "optimistic": 0.0}  # of the tied candidates


@dataclass
class RankSums:
    """Running sums for one side: feed ranks with `add`, read metrics with `result`."""

    hits: tuple[int, ...] = (1, 3, 10, 50)
    count: float = 0.0
    rank: float = 0.0
    rr: float = 0.0
    auc: float = 0.0
    hit: dict[int, float] = field(default_factory=dict)

    def add(self, ranks: np.ndarray, auc: np.ndarray) -> None:
        """ranks float [B] (>= 1), auc float [B] in [0, 1], of valid queries only."""
        ranks = np.asarray(ranks, np.float64)
        self.count += ranks.size
        self.rank += float(ranks.sum())
        self.rr += float((1.0 / ranks).sum())
        self.auc += float(np.asarray(auc, np.float64).sum())
        for k in self.hits:
            self.hit[k] = self.hit.get(k, 0.0) + float((ranks <= k).sum())

    def result(self) -> dict[str, float]:
        n = max(self.count, 1.0)
        out = {"mrr": self.rr / n, "mr": self.rank / n, "auc": self.auc / n, "count": self.count}
        for k in self.hits:
            out[f"hits@{k}"] = self.hit.get(k, 0.0) / n
        return out


def auc_from_rank(ranks: np.ndarray, num_candidates: np.ndarray) -> np.ndarray:
    """Per-query AUC under the rank's own tie rule: 1 - (rank - 1) / (candidates - 1)."""
    denom = np.maximum(np.asarray(num_candidates, np.float64) - 1.0, 1.0)
    return 1.0 - (np.asarray(ranks, np.float64) - 1.0) / denom


def combine(per_side: dict[str, dict[str, float]]) -> dict[str, float]:
    """Average of the sides' metrics, weighted by their query counts (each query counts once)."""
    sides = [m for m in per_side.values() if m.get("count", 0) > 0]
    if not sides:
        return {}
    total = sum(m["count"] for m in sides)
    keys = [k for k in sides[0] if k != "count"]
    out = {k: sum(m[k] * m["count"] for m in sides) / total for k in keys}
    out["count"] = total
    return out


def degree_ranks(degree: np.ndarray, target: np.ndarray, own: np.ndarray, filter_q: np.ndarray,
                 filter_c: np.ndarray, ties: str) -> tuple[np.ndarray, np.ndarray]:
    """The degree baseline: each candidate scored by its training degree, no learning at all.

    degree int [N] of every candidate; target int [B] the answers; own int [B] the query's own
    entity, never a candidate (an index outside [0, N), or the answer itself: none); filter pairs
    (query index [F], candidate [F]), unique: other known answers, removed. Returns (rank float
    [B] under `ties`, #candidates left int [B]), as full ranking counts them."""
    n, b = degree.size, target.size
    ordered = np.sort(degree)
    d = degree[target]
    hi, lo = np.searchsorted(ordered, d, "right"), np.searchsorted(ordered, d, "left")
    greater, equal = (n - hi).astype(np.float64), (hi - lo - 1).astype(np.float64)
    has_own = (own >= 0) & (own < n) & (own != target)
    d_own = degree[np.where(has_own, own, 0)]
    greater -= has_own & (d_own > d)
    equal -= has_own & (d_own == d)
    keep = (filter_c != target[filter_q]) & ~(has_own[filter_q] & (filter_c == own[filter_q]))
    fq, dc = filter_q[keep], degree[filter_c[keep]]
    greater -= np.bincount(fq, dc > d[fq], minlength=b)
    equal -= np.bincount(fq, dc == d[fq], minlength=b)
    num = n - has_own - np.bincount(fq, minlength=b)
    return 1.0 + greater + TIE_SHARE[ties] * equal, num


def per_relation(rel: np.ndarray, ranks: np.ndarray, own_above: np.ndarray, names: list[str],
                 hits: tuple[int, ...] = (1, 10)) -> dict[str, dict[str, float]]:
    """{relation name: {"mrr", "hits@k", "self_outranks_share", "count"}} of the queries (both
    sides) of each relation that has any: rel int [Q], ranks float [Q], own_above bool [Q] (the
    query's own entity scored above the answer)."""
    r = len(names)
    count = np.bincount(rel, minlength=r)
    sums = {"mrr": np.bincount(rel, 1.0 / ranks, minlength=r),
            **{f"hits@{k}": np.bincount(rel, ranks <= k, minlength=r) for k in hits},
            "self_outranks_share": np.bincount(rel, own_above, minlength=r)}
    return {names[i]: {**{k: float(v[i] / count[i]) for k, v in sums.items()}, "count": int(count[i])}
            for i in np.flatnonzero(count)}


def chance_mrr(num_candidates: int) -> float:
    """Expected MRR of a uniformly random ranking among n candidates: H_n / n."""
    n = max(int(num_candidates), 1)
    return float(np.sum(1.0 / np.arange(1, n + 1)) / n)


# the sweep objective: validation MRR, filtered, else raw, else sampled (then the same on test)
OBJECTIVE = tuple(f"{s}.{p}.mrr" for s in ("valid", "test") for p in ("filtered", "raw", "sampled"))


def objective(metrics: dict) -> float:
    """The number a sweeper maximises (OBJECTIVE's first metric the run has; NaN if none)."""
    for name in OBJECTIVE:
        split, proto, _ = name.split(".")
        res = metrics.get("eval", {}).get(split, {})
        if proto in res:
            return float(res[proto]["avg"]["mrr"])
    return float("nan")


def is_number(v: Any) -> bool:
    """A finite int or float (not a bool): a value worth tabulating or plotting."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
