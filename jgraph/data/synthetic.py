"""Synthetic knowledge graphs with planted structure, shaped like Freebase86m (86,054,151 entities,
14,824 relations, 338,586,276 edges), written as sharded Parquet for `jgraph import`.

    python -m jgraph.data.synthetic OUT_DIR --entities 86054151 --relations 14824 --edges 338586276

The generative model. Every draw is a counter-based hash of (seed, edge index, slot), so any set of
edges is generated alone, in any order, by any number of threads, with the same result.
  - relation r of an edge: Zipf, P(r) ∝ (r + 1)^-relation_zipf;
  - entity popularity: entities are ranked by a seeded bijection of their ids, and rank ρ has
    popularity q(ρ) ∝ (ρ + 1)^-degree_zipf (degrees then follow a power law of exponent
    1 + 1/degree_zipf); the first `entities` edges have the entity of rank i as head (so every
    entity occurs), the others a head drawn from q;
  - hidden structure: every entity has a low-dimensional hidden vector, a point c(e) of the torus
    Z_m^k (m = `grid`, k = `rank`; c = ρ mod m^k read as k base-m digits), i.e. the unit complex
    vector exp(2πi c / m); every relation a hidden diagonal, a rotation by b_r in Z_m^k;
  - the tail: with probability 1 - noise an entity drawn from q among those at c(h) + b_r (the
    head's vector rotated by the relation's diagonal), else one drawn from q among all.
The planted model's score of a candidate is its log-probability under this process (`ceiling`):
log p(t | h, r) for tails, log p(h) + log p(t | h, r) for heads. A trained model (ComplEx can
represent the rotations exactly) is judged against that model's sampled MRR on edges of the graph
(a random sample of edge indices: the import's held-out edges are such a sample), next to chance
and the scores of its two halves (popularity alone, hidden vectors alone).

Memory: one block of edges and its strings (nothing per entity). Compiled loops (numba, parallel
over the edges of a block).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jgraph.errors import command_parser

FREEBASE86M = {"entities": 86_054_151, "relations": 14_824, "edges": 338_586_276}
_SLOTS = 8  # hash slots per edge: relation, head, noise coin, tail
_U64 = np.uint64
_MIX1, _MIX2, _GOLD = _U64(0xBF58476D1CE4E5B9), _U64(0x94D049BB133111EB), _U64(0x9E3779B97F4A7C15)
_jit = numba.njit(nogil=True, cache=True)


@dataclass(frozen=True)
class Planted:
    """The generator's parameters (see the module docstring)."""

    entities: int
    relations: int
    edges: int
    seed: int = 0
    rank: int = 2  # k: the hidden vectors' dimension (complex)
    grid: int = 32  # m: points per dimension (m^k hidden classes)
    noise: float = 0.3  # share of tails drawn from q alone
    relation_zipf: float = 1.0
    degree_zipf: float = 0.8  # popularity q(rank) ∝ (rank + 1)^-degree_zipf

    @property
    def classes(self) -> int:
        return min(self.grid ** self.rank, self.entities)

    def key(self, salt: int) -> np.uint64:
        return _U64((self.seed * 0x9E3779B1 + salt * 0x85EBCA77 + 1) % (1 << 64))


@_jit
def _mix(x):
    """splitmix64's finaliser: a bijection of uint64."""
    x = (x ^ (x >> _U64(30))) * _MIX1
    x = (x ^ (x >> _U64(27))) * _MIX2
    return x ^ (x >> _U64(31))


@_jit
def _uniform(key, counter):
    """A float64 in (0, 1) from (key, counter)."""
    return ((_mix(key + _U64(counter) * _GOLD) >> _U64(11)) + 0.5) * (1.0 / 9007199254740992.0)


@_jit
def _power_rank(u, n, s, top=-1.0):
    """A rank in [0, n) with P(rank) ∝≈ (rank + 1)^-s (s != 1; continuous inverse CDF); `top`:
    (n + 1)^(1 - s) - 1 if known."""
    a = 1.0 - s
    if top < 0:
        top = (n + 1.0) ** a - 1.0
    x = (top * u + 1.0) ** (1.0 / a)
    r = int(x) - 1
    return min(max(r, 0), n - 1)


@_jit
def _rotate(c, b, grid, rank):
    """The class of c rotated by b (digit-wise addition mod grid)."""
    out, place = 0, 1
    for _ in range(rank):
        out += ((c // place + b // place) % grid) * place
        place *= grid
    return out


@_jit
def _edges_kernel(key, idx, shift, rel_cdf, n, n_cover, s, noise, classes, grid, rank, mult, add,
                  lhs, rel, rhs):
    """Edges idx[i] into lhs/rel/rhs (int32 entity ids and relations)."""
    top = (n + 1.0) ** (1.0 - s) - 1.0
    for i in range(len(idx)):
        g = idx[i]
        base = g * _SLOTS
        r = min(np.searchsorted(rel_cdf, _uniform(key, base)), len(rel_cdf) - 1)
        hr = g if g < n_cover else _power_rank(_uniform(key, base + 1), n, s, top)
        h = (hr * mult + add) % n
        t = h
        for attempt in range(4):  # a tail equal to the head is drawn again
            u = _uniform(key, base + 3 + attempt)
            if _uniform(key, base + 2 + 4 * attempt) < noise:
                tr = _power_rank(u, n, s, top)
            else:
                c = _rotate(hr % classes, shift[r], grid, rank)
                tr = _power_rank(u, (n - 1 - c) // classes + 1, s) * classes + c
            t = (tr * mult + add) % n
            if t != h:
                break
        lhs[i], rel[i], rhs[i] = h, r, t


class Generator:
    """The hidden model and a source of edges (any edge indices)."""

    def __init__(self, p: Planted) -> None:
        if p.entities < 2 or p.relations < 1 or p.edges < 0:
            raise ValueError(f"need >= 2 entities, >= 1 relation and >= 0 edges, got {p}")
        if not 0 < p.degree_zipf < 1 or p.relation_zipf < 0 or not 0 <= p.noise <= 1:
            raise ValueError("degree_zipf must be in (0, 1), relation_zipf >= 0, noise in [0, 1]")
        self.p = p
        rng = np.random.default_rng([p.seed, 2])
        self.shift = rng.integers(p.classes, size=p.relations).astype(np.int64)  # b_r, as a class
        w = (np.arange(p.relations) + 1.0) ** -p.relation_zipf
        self.rel_cdf = np.cumsum(w) / w.sum()
        self.mult = _coprime(p.entities, p.seed)
        self.add = (p.seed * 7919) % p.entities
        self.inverse = pow(self.mult, -1, p.entities)

    def edges_at(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(lhs, rel, rhs) int32 [len(idx)] of the edges of indices `idx` (int64)."""
        p = self.p
        out = [np.empty(len(idx), np.int32) for _ in range(3)]
        _edges_kernel(p.key(3), np.asarray(idx, np.int64), self.shift, self.rel_cdf, p.entities,
                      min(p.entities, p.edges), p.degree_zipf, p.noise, p.classes, p.grid, p.rank,
                      self.mult, self.add, *out)
        return out[0], out[1], out[2]

    def edges(self, start: int, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.edges_at(np.arange(start, start + count, dtype=np.int64))

    def rank_of(self, ids: np.ndarray) -> np.ndarray:
        """Popularity ranks int64 of entity ids."""
        return (np.asarray(ids, np.int64) - self.add) % self.p.entities * self.inverse % self.p.entities

    def log_q(self, ranks: np.ndarray, n: np.ndarray | int) -> np.ndarray:
        """log P(rank) under _power_rank over [0, n) (the last rank takes the clipped mass)."""
        a = 1.0 - self.p.degree_zipf
        total = (np.asarray(n, np.float64) + 1.0) ** a - 1.0
        r = ranks.astype(np.float64)
        return np.log(((r + 2.0) ** a - (r + 1.0) ** a) / total)

    def log_tail(self, head_ranks: np.ndarray, rel: np.ndarray, tail_ranks: np.ndarray,
                 hidden: bool = True, popularity: bool = True) -> np.ndarray:
        """log p(tail | head, rel) (same shapes); hidden=False: as if every class matched (the
        popularity half), popularity=False: uniform within classes (the hidden half)."""
        p, k = self.p, self.p.classes
        c = _rotate_np(head_ranks % k, self.shift[rel], p.grid, p.rank)
        match = (tail_ranks % k) == c
        n_c = (p.entities - 1 - (tail_ranks % k)) // k + 1
        if not popularity:
            in_class = np.where(match, (1 - p.noise) / n_c, 0.0)
            return np.log(in_class + p.noise / p.entities)
        q_all = np.exp(self.log_q(tail_ranks, p.entities))
        q_class = np.exp(self.log_q(tail_ranks // k, n_c))
        if not hidden:
            return np.log(q_all)
        return np.log(np.where(match, (1 - p.noise) * q_class, 0.0) + p.noise * q_all)

    def log_head(self, head_ranks: np.ndarray) -> np.ndarray:
        """log p(head): the coverage edges' heads (uniform) mixed with q."""
        p = self.p
        cover = min(p.entities, p.edges) / max(p.edges, 1)
        return np.log(cover / p.entities + (1 - cover) * np.exp(self.log_q(head_ranks, p.entities)))


def _rotate_np(c: np.ndarray, b: np.ndarray, grid: int, rank: int) -> np.ndarray:
    out, place = np.zeros_like(c), 1
    for _ in range(rank):
        out += ((c // place + b // place) % grid) * place
        place *= grid
    return out


def _coprime(n: int, seed: int) -> int:
    m = (2654435761 + 2 * seed) % n or 1
    while math.gcd(m, n) != 1:
        m = m % n + 1
    return m


# ------------------------------------------------------------------------ names and output
MID_DIGITS = np.frombuffer(b"0123456789bcdfghjklmnpqrstvwxyz_", np.uint8)  # Freebase's base-32
_WIDTH = 10  # "/m/0" + 6 base-32 digits


@_jit
def _mid_kernel(ids, digits, out):
    for i in range(len(ids)):
        x = ids[i]
        o = i * 10
        out[o], out[o + 1], out[o + 2], out[o + 3] = 47, 109, 47, 48  # /m/0
        for j in range(5, -1, -1):
            out[o + 4 + j] = digits[x % 32]
            x //= 32


def entity_names(ids: np.ndarray) -> pa.Array:
    """Freebase-style MIDs (/m/0 + 6 base-32 digits) of entity ids < 32^6 (compiled, vectorised)."""
    out = np.empty(len(ids) * _WIDTH, np.uint8)
    _mid_kernel(np.asarray(ids, np.int64), MID_DIGITS, out)
    offsets = np.arange(len(ids) + 1, dtype=np.int32) * _WIDTH
    return pa.StringArray.from_buffers(len(ids), pa.py_buffer(offsets), pa.py_buffer(out))


def relation_names(count: int) -> pa.Array:
    return pa.array([f"synthetic.domain{r % 97}.property{r}" for r in range(count)])


SCHEMA = pa.schema([("lhs", pa.string()), ("rel", pa.dictionary(pa.int32(), pa.string())),
                    ("rhs", pa.string())])


def write_parquet(gen: Generator, out: str, shard_edges: int = 1 << 25, block: int = 1 << 21,
                  workers: int = 2, log=None) -> list[str]:
    """Every edge of `gen` into out/part-NNNNN.parquet (columns lhs, rel, rhs: names; snappy), a
    shard of `shard_edges` edges each. `workers` threads generate blocks of `block` edges and their
    names (compiled, GIL released) while this one writes: a few blocks in memory at a time."""
    from jgraph.data.pipeline import ordered_map

    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    rels = relation_names(gen.p.relations)
    e = gen.p.edges
    shards = [(s0, min(s0 + shard_edges, e)) for s0 in range(0, e, shard_edges)]
    blocks = [(k, b, min(b + block, s1)) for k, (s0, s1) in enumerate(shards) for b in range(s0, s1, block)]

    def table(item):
        k, b0, b1 = item
        lhs, rel, rhs = gen.edges(b0, b1 - b0)
        return k, pa.table({"lhs": entity_names(lhs), "rel": pa.DictionaryArray.from_arrays(
            pa.array(rel), rels), "rhs": entity_names(rhs)}, schema=SCHEMA)

    files, writer, t0 = [], None, time.perf_counter()
    try:
        for k, tab in ordered_map(table, blocks, workers, depth=workers + 1):
            if writer is None or k == len(files):
                if writer is not None:
                    writer.close()
                files.append(str(dest / f"part-{k:05d}.parquet"))
                writer = pq.ParquetWriter(files[-1], SCHEMA, compression="snappy",
                                          use_dictionary=["rel"], write_statistics=False)
                if log is not None and k:
                    log(f"{shards[k][0]:,} edges, {k} shards ({time.perf_counter() - t0:.0f}s)")
            writer.write_table(tab, row_group_size=block)
    finally:
        if writer is not None:
            writer.close()
    return files


# ------------------------------------------------------------------------ the ceiling
@_jit
def _sampled_ranks(pos, neg, valid, share):
    """rank [Q] = 1 + #(neg > pos) + share x #(neg == pos), over valid negatives."""
    out = np.empty(len(pos))
    for q in range(len(pos)):
        g, e = 0, 0
        for c in range(neg.shape[1]):
            if valid[q, c]:
                if neg[q, c] > pos[q]:
                    g += 1
                elif neg[q, c] == pos[q]:
                    e += 1
        out[q] = 1.0 + g + share * e
    return out


def chance_mrr(candidates: int) -> float:
    """Expected MRR of a random ranking of the answer among `candidates` negatives."""
    k = candidates + 1
    return float(np.sum(1.0 / np.arange(1, k + 1)) / k)


SCORERS = ("planted", "hidden", "popularity")


def ceiling(gen: Generator, num_edges: int = 20_000, batch_negs: int = 1000, uniform_negs: int = 1000,
            scorer: str = "planted", seed: int = 0) -> float:
    """Sampled MRR (both sides, realistic ties) of `scorer` on `num_edges` edges of the graph drawn
    at random, under jgraph's sampled protocol (jgraph/ranking.py sampled_ranking): chunks of
    `batch_negs` (or `uniform_negs` when 0) edges, each positive ranked among the chunk's other
    positives' ends on its side (when batch_negs > 0) and `uniform_negs` entities drawn uniformly
    per chunk and side. scorer: planted (the log-probability of the process), popularity (log q
    alone), hidden (the hidden vectors alone: uniform popularity)."""
    if scorer not in SCORERS:
        raise ValueError(f"scorer must be one of {SCORERS}, got {scorer!r}")
    p = gen.p
    rng = np.random.default_rng([seed, 5])
    idx = np.sort(rng.choice(p.edges, size=min(num_edges, p.edges), replace=False))
    lhs, rel, rhs = (a.astype(np.int64) for a in gen.edges_at(idx))
    chunk = batch_negs or uniform_negs
    hid, pop = scorer != "popularity", scorer != "hidden"
    rr = []
    for c0 in range(0, len(idx), chunk):
        r = rel[c0 : c0 + chunk]
        h, t = gen.rank_of(lhs[c0 : c0 + chunk]), gen.rank_of(rhs[c0 : c0 + chunk])
        n = len(h)
        for side in (0, 1):  # 0: the head is replaced
            ans = h if side == 0 else t
            uni = gen.rank_of(rng.integers(p.entities, size=uniform_negs))
            negs = [np.broadcast_to(uni, (n, uniform_negs))]
            valid = [np.ones((n, uniform_negs), bool)]
            if batch_negs:
                negs.append(np.broadcast_to(ans, (n, n)))
                valid.append(~np.eye(n, dtype=bool))
            cand = np.concatenate([ans[:, None], *negs], axis=1)  # column 0: the answer
            rr_ = np.broadcast_to(r[:, None], cand.shape)
            if side == 0:
                sc = gen.log_tail(cand, rr_, np.broadcast_to(t[:, None], cand.shape), hid, pop)
                if pop:
                    sc = sc + gen.log_head(cand)
            else:
                sc = gen.log_tail(np.broadcast_to(h[:, None], cand.shape), rr_, cand, hid, pop)
            rr.append(_sampled_ranks(np.ascontiguousarray(sc[:, 0]), np.ascontiguousarray(sc[:, 1:]),
                                     np.concatenate(valid, 1), 0.5))
    return float(np.mean(1.0 / np.concatenate(rr)))


def protocol_report(gen: Generator, num_edges: int, batch_negs: int, uniform_negs: int) -> dict:
    """The three scorers' sampled MRR, the ceiling (the best of them: the planted log-probability
    is the best scorer against uniform negatives, its hidden half against batch negatives, which
    are drawn by popularity as the answers are) and chance."""
    negs = uniform_negs + max(batch_negs - 1, 0)
    mrr = {f"{s}_mrr": ceiling(gen, num_edges, batch_negs, uniform_negs, s) for s in SCORERS}
    return {"batch_negs": batch_negs, "uniform_negs": uniform_negs, "edges": num_edges, **mrr,
            "ceiling_mrr": max(mrr.values()), "chance_mrr": chance_mrr(negs)}


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.data.synthetic", __doc__)
    p.add_argument("out", help="folder for part-NNNNN.parquet and planted.json")
    p.add_argument("--entities", type=int, default=FREEBASE86M["entities"])
    p.add_argument("--relations", type=int, default=FREEBASE86M["relations"])
    p.add_argument("--edges", type=int, default=FREEBASE86M["edges"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rank", type=int, default=2, help="hidden vectors' dimension")
    p.add_argument("--grid", type=int, default=32, help="points per hidden dimension")
    p.add_argument("--noise", type=float, default=0.3, help="share of tails drawn by popularity alone")
    p.add_argument("--relation-zipf", type=float, default=1.0)
    p.add_argument("--degree-zipf", type=float, default=0.8)
    p.add_argument("--ceiling-edges", type=int, default=20_000, help="fresh edges the ceiling is measured on")
    p.add_argument("--shard-edges", type=int, default=1 << 25)
    a = p.parse_args(argv)
    planted = Planted(a.entities, a.relations, a.edges, a.seed, a.rank, a.grid, a.noise,
                      a.relation_zipf, a.degree_zipf)
    t0 = time.perf_counter()
    gen = Generator(planted)
    files = write_parquet(gen, a.out, a.shard_edges, log=lambda m: print(m, file=sys.stderr, flush=True))
    wall = time.perf_counter() - t0
    protocols = [protocol_report(gen, a.ceiling_edges, b, 1000) for b in (1000, 0)]
    size = sum(os.path.getsize(f) for f in files)
    meta = {"planted": asdict(planted), "files": [os.path.basename(f) for f in files], "bytes": size,
            "seconds": wall, "protocols": protocols}
    (Path(a.out) / "planted.json").write_text(json.dumps(meta, indent=1))
    print(f"wrote {a.edges:,} edges ({a.entities:,} entities, {a.relations:,} relations) in {len(files)} "
          f"shards, {size / 1e9:.2f} GB, {wall:.1f}s ({a.edges / max(wall, 1e-9) / 1e6:.2f}M edges/s)")
    for r in protocols:
        print(f"ceiling {r['ceiling_mrr']:.4f}: sampled MRR, {r['batch_negs']} batch + "
              f"{r['uniform_negs']} uniform negatives, "
              f"{r['edges']:,} edges of the graph: planted model {r['planted_mrr']:.4f}, hidden "
              f"vectors alone {r['hidden_mrr']:.4f}, popularity alone {r['popularity_mrr']:.4f}, "
              f"chance {r['chance_mrr']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
