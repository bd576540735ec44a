"""The built-in knowledge graph: generated (seeded), with planted structure a model can learn.

A hidden low-rank complex model: entity e has a vector z_e in C^rank, relation r a vector w_r
(random phases and moduli), and the plausibility of (h, r, t) is Re(<z_h * w_r, conj(z_t)>).
Heads and relations are drawn uniformly; the tail is drawn with probability
softmax(plausibility / (sqrt(rank) * temperature)) among the `top_k` most plausible entities.
Duplicate triples are dropped. A ComplEx/DistMult-style model can recover the structure; a
random ranking scores ~ln(N)/N.
"""

from __future__ import annotations

import numpy as np

from jgraph.config import ToyConfig


def hidden_model(cfg: ToyConfig) -> tuple[np.ndarray, np.ndarray]:
    """The planted parameters: (query factors [R, 2 rank] x entity factors... ) as real arrays.

    Returns (z [N, 2 rank] = [re, im], w [R, rank] complex)."""
    rng = np.random.default_rng(cfg.seed)
    z = rng.standard_normal((cfg.num_entities, 2 * cfg.rank)).astype(np.float32) / np.sqrt(2)
    w = np.exp(1j * rng.uniform(0, 2 * np.pi, (cfg.num_relations, cfg.rank)))
    w = w * rng.uniform(0.5, 1.5, (cfg.num_relations, cfg.rank))
    return z, w


def plausibility(z: np.ndarray, w: np.ndarray, heads: np.ndarray, rels: np.ndarray) -> np.ndarray:
    """Re(<z_h * w_r, conj(z_t)>) for every tail t: float32 [len(heads), N]."""
    k = w.shape[1]
    zh = z[heads, :k] + 1j * z[heads, k:]
    q = zh * w[rels]
    qr = np.concatenate([q.real, q.imag], axis=1).astype(np.float32)  # Re(q conj(z)) = q_re z_re + q_im z_im
    return qr @ z.T


def generate(cfg: ToyConfig) -> dict[str, np.ndarray]:
    """Edges as {"lhs", "rel", "rhs"} int64 arrays [num_edges], distinct triples."""
    if cfg.num_entities < 2 or cfg.num_relations < 1 or cfg.rank < 1:
        raise ValueError("toy: need num_entities >= 2, num_relations >= 1 and rank >= 1")
    rng = np.random.default_rng([cfg.seed, 1])
    z, w = hidden_model(cfg)
    n = cfg.num_entities
    top = min(cfg.top_k, n - 1)
    scale = 1.0 / (np.sqrt(cfg.rank) * cfg.temperature)
    parts, have, first = [], 0, np.zeros(0, np.int64)
    triples = np.zeros((0, 3), np.int64)
    for _ in range(20):  # draw until enough distinct triples
        m = max(int((cfg.num_edges - have) * 1.25), 1024)
        heads = rng.integers(n, size=m)
        rels = rng.integers(cfg.num_relations, size=m)
        tails = np.empty(m, np.int64)
        for s in range(0, m, 8192):
            sl = slice(s, s + 8192)
            logits = plausibility(z, w, heads[sl], rels[sl]) * scale  # [b, N]
            cand = np.argpartition(-logits, top, axis=1)[:, :top]
            lg = np.take_along_axis(logits, cand, axis=1)
            pick = np.argmax(lg + rng.gumbel(size=lg.shape), axis=1)
            tails[sl] = cand[np.arange(cand.shape[0]), pick]
        parts.append(np.stack([heads, rels, tails], axis=1))
        triples = np.concatenate(parts)
        _, first = np.unique(triples, axis=0, return_index=True)
        have = first.size
        if have >= cfg.num_edges:
            break
    triples = triples[np.sort(first)[: cfg.num_edges]]
    return {"lhs": triples[:, 0], "rel": triples[:, 1], "rhs": triples[:, 2]}


def entity_names(n: int) -> list[str]:
    return [f"e{i}" for i in range(n)]


def relation_names(r: int) -> list[str]:
    return [f"r{i}" for i in range(r)]
