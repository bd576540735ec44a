"""A generated knowledge graph whose entities' hidden vectors are a function of their features
(for featurized entity types: experiments/featurized, tests).

Each entity has 2..max_features features drawn from a vocabulary of V; each feature has a hidden
vector phi [rank]; an entity's hidden vector is the mean of its features' (so its features say
everything about it). Each relation r has a diagonal d_r; an edge's head is drawn uniformly and its
tail from the softmax of <h, d_r, t> / temperature over the top_k tails. A fraction of the
entities is held out: edges touching one of them form the `cold` split (never trained on), the
others are split into train/valid/test.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def generate(num_entities: int = 2000, num_features: int = 300, num_relations: int = 8,
             num_edges: int = 60_000, rank: int = 16, max_features: int = 5,
             temperature: float = 0.1, top_k: int = 20, cold_fraction: float = 0.1,
             seed: int = 0) -> dict:
    """{"features": list of (entity, feature) pairs, "train"/"valid"/"test"/"cold": int arrays
    [E, 3] of (head, relation, tail), "cold_entities": int array}."""
    rng = np.random.default_rng(seed)
    phi = rng.normal(size=(num_features, rank)) / np.sqrt(rank) * 3.0
    counts = rng.integers(2, max_features + 1, num_entities)
    pairs, hidden = [], np.zeros((num_entities, rank))
    for e in range(num_entities):
        f = rng.choice(num_features, counts[e], replace=False)
        pairs += [(e, int(x)) for x in f]
        hidden[e] = phi[f].mean(0)
    diag = rng.normal(size=(num_relations, rank))
    per_rel = num_edges // num_relations
    edges = []
    for r in range(num_relations):
        heads = rng.integers(0, num_entities, per_rel)
        scores = (hidden[heads] * diag[r]) @ hidden.T / temperature  # [n, N]
        top = np.argpartition(-scores, top_k, axis=1)[:, :top_k]
        s = np.take_along_axis(scores, top, 1)
        p = np.exp(s - s.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        pick = (p.cumsum(1) < rng.random((per_rel, 1))).sum(1).clip(0, top_k - 1)
        tails = top[np.arange(per_rel), pick]
        edges.append(np.stack([heads, np.full(per_rel, r), tails], 1))
    edges = np.unique(np.concatenate(edges), axis=0)
    edges = edges[edges[:, 0] != edges[:, 2]]
    cold = rng.choice(num_entities, int(num_entities * cold_fraction), replace=False)
    is_cold = np.zeros(num_entities, bool)
    is_cold[cold] = True
    touch = is_cold[edges[:, 0]] | is_cold[edges[:, 2]]
    both = is_cold[edges[:, 0]] & is_cold[edges[:, 2]]
    warm = edges[~touch][rng.permutation(int((~touch).sum()))]
    n = len(warm) // 20
    return {"features": pairs, "valid": warm[:n], "test": warm[n : 2 * n], "train": warm[2 * n :],
            "cold": edges[touch & ~both], "cold_entities": np.sort(cold)}


def write_tsv(g: dict, folder: Path, splits: dict[str, str]) -> None:
    """Write g's splits as TSV (e{h} r{r} e{t}) named by `splits` {split: file name} and the
    features as features.tsv (e{entity} f{feature})."""
    folder.mkdir(parents=True, exist_ok=True)
    for split, name in splits.items():
        (folder / name).write_text("".join(f"e{h}\tr{r}\te{t}\n" for h, r, t in g[split]))
    (folder / "features.tsv").write_text("".join(f"e{e}\tf{f}\n" for e, f in g["features"]))
