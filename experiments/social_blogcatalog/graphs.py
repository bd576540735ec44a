"""Two generated social-like graphs, so the social recipe is not fitted to BlogCatalog alone:

  coauthor  papers of 2-6 authors drawn from small research groups (400 groups, 8000 authors,
            each author's activity Pareto(3)), every paper a clique: co-authorship's triangles and
            communities with mild hubs (little to gain from ranking by degree);
  hubs      a degree-corrected block model (8000 nodes, 40 communities, 150k edges, 70% inside a
            community), popularity Pareto(1.8): heavy hubs as in BlogCatalog.

Each is written as <out>/<name>/{train,valid,test}.tsv.gz (src<TAB>dst, undirected, duplicates and
self-loops dropped, split 90/5/5 at random) for `data.format=tsv data.symmetric=true`.

    python experiments/social_blogcatalog/graphs.py --out /tmp/social_graphs
"""

from __future__ import annotations

import argparse
import gzip
from pathlib import Path

import numpy as np


def _popularity(rng: np.random.Generator, n: int, shape: float) -> np.ndarray:
    return rng.pareto(shape, n) + 1.0


def coauthor(rng: np.random.Generator, nodes: int = 8000, groups: int = 400, papers: int = 24000,
             shape: float = 3.0) -> np.ndarray:
    """Undirected edges int [E, 2]: each paper a clique of 2 + Poisson(1) (at most 6) authors of one
    group (drawn by activity), one author in ten from anywhere."""
    group = rng.integers(groups, size=nodes)
    act = _popularity(rng, nodes, shape)
    members = [np.flatnonzero(group == g) for g in range(groups)]
    weight = np.array([act[m].sum() for m in members])
    edges = []
    for g in rng.choice(groups, size=papers, p=weight / weight.sum()):
        m = members[g]
        k = min(2 + rng.poisson(1.0), 6, m.size)
        authors = rng.choice(m, size=k, replace=False, p=act[m] / act[m].sum())
        if rng.random() < 0.1:
            authors[-1] = rng.choice(nodes, p=act / act.sum())
        a, b = np.triu_indices(k, 1)
        edges.append(np.stack([authors[a], authors[b]], 1))
    return np.concatenate(edges)


def hubs(rng: np.random.Generator, nodes: int = 8000, communities: int = 40, edges: int = 150000,
         inside: float = 0.7, shape: float = 1.8) -> np.ndarray:
    """Undirected edges int [E, 2] of a degree-corrected block model: an edge stays inside a
    community (drawn by its members' popularity) with probability `inside`, else joins any two
    nodes; endpoints drawn in proportion to popularity."""
    comm = rng.integers(communities, size=nodes)
    pop = _popularity(rng, nodes, shape)
    out = np.empty((edges, 2), np.int64)
    local = rng.random(edges) < inside
    anywhere = pop / pop.sum()
    out[~local] = rng.choice(nodes, size=(int((~local).sum()), 2), p=anywhere)
    members = [np.flatnonzero(comm == c) for c in range(communities)]
    weight = np.array([pop[m].sum() for m in members])
    cs = rng.choice(communities, size=int(local.sum()), p=weight / weight.sum())
    rows = np.flatnonzero(local)
    for c in range(communities):
        at = rows[cs == c]
        m = members[c]
        out[at] = rng.choice(m, size=(at.size, 2), p=pop[m] / pop[m].sum())
    return out


def write(edges: np.ndarray, folder: Path, rng: np.random.Generator) -> dict[str, int]:
    """Self-loops and duplicates (either direction) dropped, shuffled, split 90/5/5, written."""
    e = np.sort(edges, axis=1)
    e = np.unique(e[e[:, 0] != e[:, 1]], axis=0)
    e = e[rng.permutation(len(e))]
    n = len(e)
    cut = [int(0.9 * n), int(0.95 * n)]
    folder.mkdir(parents=True, exist_ok=True)
    sizes = {}
    for name, part in zip(("train", "valid", "test"), np.split(e, cut), strict=True):
        with gzip.open(folder / f"{name}.tsv.gz", "wt") as f:
            f.write("".join(f"n{a}\tn{b}\n" for a, b in part))
        sizes[name] = len(part)
    return sizes


GRAPHS = {"coauthor": coauthor, "hubs": hubs}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    for name, make in GRAPHS.items():
        rng = np.random.default_rng([a.seed, len(name)])
        sizes = write(make(rng), a.out / name, rng)
        print(name, sizes)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
