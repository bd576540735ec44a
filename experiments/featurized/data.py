"""The experiment's datasets, written under RESULTS/data (never into the repository's data):

- fkg/: a generated knowledge graph whose entities' hidden vectors are the mean of their features'
  (jgraph/data/feature_kg.py: 2,000 entities, 300 features, 8 relations, 60,000 edges); 10% of
  the entities are held out of training entirely. train/valid: edges among the other entities;
  test.tsv: edges between a held-out and a seen entity (cold start); features.tsv: every entity.
- blogcatalog/: BlogCatalog's friendships with 10% of the users held out (seed 0): train = the
  split's train edges among seen users, valid = 2,000 of its valid edges among seen users, test =
  2,000 edges (of valid + test) between a held-out and a seen user. features_groups.tsv: each
  user's interest groups (39; every user has >= 1); features_id_groups.tsv: a seen user's own id as
  one more feature (its own row, PBG-style), a held-out user's groups only.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from jgraph.data.feature_kg import generate, write_tsv


def feature_kg(root: Path) -> None:
    out = root / "fkg"
    if (out / "features.tsv").is_file():
        return
    g = generate(num_entities=2000, num_features=300, num_relations=8, num_edges=60_000, seed=0)
    write_tsv(g, out, {"train": "train.tsv", "valid": "valid.tsv", "cold": "test.tsv"})


def _read(path: Path) -> np.ndarray:
    with gzip.open(path, "rt") as f:
        return np.array([[int(x) for x in line.split("\t")[:2]] for line in f if line.strip()])


def blogcatalog(root: Path, source: Path, sample: int = 2000, seed: int = 0) -> None:
    out = root / "blogcatalog"
    if (out / "features_id_groups.tsv").is_file():
        return
    rng = np.random.default_rng(seed)
    train, valid, test = (_read(source / f"{s}.tsv.gz") for s in ("train", "valid", "test"))
    groups = _read(source / "groups.tsv.gz")
    n = int(max(train.max(), valid.max(), test.max(), groups[:, 0].max())) + 1
    cold = np.zeros(n, bool)
    cold[rng.choice(n, n // 10, replace=False)] = True

    def seen(e):
        return e[~cold[e[:, 0]] & ~cold[e[:, 1]]]

    held = np.concatenate([valid, test])
    one_cold = held[cold[held[:, 0]] ^ cold[held[:, 1]]]
    val = seen(valid)
    splits = {"train": seen(train), "valid": val[rng.choice(len(val), sample, replace=False)],
              "test": one_cold[rng.choice(len(one_cold), min(sample, len(one_cold)), replace=False)]}
    out.mkdir(parents=True, exist_ok=True)
    for name, e in splits.items():
        (out / f"{name}.tsv").write_text("".join(f"u{a}\tu{b}\n" for a, b in e))
    group_lines = "".join(f"u{u}\tg{g}\n" for u, g in groups)
    (out / "features_groups.tsv").write_text(group_lines)
    (out / "features_id_groups.tsv").write_text(
        group_lines + "".join(f"u{u}\tid{u}\n" for u in range(n) if not cold[u]))
