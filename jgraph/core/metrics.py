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
