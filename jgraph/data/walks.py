"""Random-walk edges (DeepWalk, node2vec): a graph turned into (node, context) pairs that the
trainer reads as the edges of its buckets.

From every node, `walks.per_node` truncated random walks of `walks.length` nodes are drawn
(compiled numba loops); each node of a walk is paired with the nodes 1..`walks.window` steps after
it, so a walk of L nodes (none repeated) gives sum_{d=1..min(window, L-1)} (L - d) pairs. Each
co-occurrence is one edge (lhs = the earlier node, rhs = the later one, the data's first relation);
the step trains both of its ends against negatives, so the reverse pair is not written again.
Pairs of a node with itself (a walk coming back within the window) are dropped. A walk stops
early at a node without out-edges. Edge weights are not used by the walk.

node2vec's second-order walk (Grover & Leskovec 2016): after stepping t -> v, the next node x is
drawn with weight 1/p if x = t, 1 if x is a neighbour of t, 1/q otherwise, by rejection sampling
(a uniform neighbour accepted with probability weight / max(1/p, 1, 1/q)): exact, and no
per-edge alias table. p = q = 1 is DeepWalk's uniform walk (no rejection).

Pairs are placed in buckets by their ends' partitions piece by piece (a piece: a few thousand
walks), so a partitioned run gets them in its P x P buckets. They are kept in memory (16 bytes a
pair) or, with `storage.edge_dir`, streamed into per-bucket spill files and written there in the
storage/edges layout (`EdgeBucketStore`), so their count needs no memory.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path

import numba
import numpy as np

from jgraph.config import WalksConfig
from jgraph.data.graph import Dataset
from jgraph.data.pipeline import ordered_map
from jgraph.data.spill import RecordSpill
from jgraph.errors import ConfigError
from jgraph.plan.buckets import BucketedEdges
from jgraph.plan.partition import PartitionLayout
from jgraph.storage.edges import BucketWriter, EdgeBucketStore

log = logging.getLogger("jgraph")
PAIR = np.dtype([("lhs", "<i4"), ("rhs", "<i4")])
PIECE_WALKS = 1 << 13  # walks per piece: what is generated, placed and appended at once


def pairs_per_walk(length: int, window: int) -> int:
    """Pairs of one walk of `length` nodes without repeats: sum_{d=1..min(window, length-1)} (length - d)."""
    return sum(length - d for d in range(1, min(window, length - 1) + 1))


class WalkGraph:
    """Out-neighbours in CSR form, each row sorted (node2vec's "is x a neighbour of t" is a binary
    search). indptr int64 [N + 1], indices int32 [E]."""

    def __init__(self, lhs: np.ndarray, rhs: np.ndarray, num_nodes: int) -> None:
        order = np.lexsort((rhs, lhs))
        self.indices = np.asarray(rhs, np.int32)[order]
        self.indptr = np.zeros(num_nodes + 1, np.int64)
        np.cumsum(np.bincount(lhs, minlength=num_nodes), out=self.indptr[1:])
        self.num_nodes = num_nodes


@numba.njit(nogil=True, cache=True)
def _is_neighbour(indptr, indices, t, x):
    lo, hi = indptr[t], indptr[t + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        if indices[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo < indptr[t + 1] and indices[lo] == x


@numba.njit(nogil=True, cache=True)
def random_walks(indptr, indices, starts, length, p, q, seed, out):
    """One walk from each of `starts` [W] into out int32 [W, length]; -1 after a walk stops early
    (a node without out-edges). First step uniform; then node2vec's bias (1/p back, 1 to a
    neighbour of the previous node, 1/q further) by rejection; p = q = 1: uniform (DeepWalk)."""
    np.random.seed(seed)
    inv_p, inv_q = 1.0 / p, 1.0 / q
    top = max(inv_p, 1.0, inv_q)
    biased = p != 1.0 or q != 1.0
    for w in range(len(starts)):
        v = starts[w]
        out[w, 0] = v
        prev = -1
        for i in range(1, length):
            lo, deg = indptr[v], indptr[v + 1] - indptr[v]
            if deg == 0:
                out[w, i:] = -1
                break
            x = indices[lo + np.random.randint(deg)]
            if biased and prev >= 0:
                while True:
                    if x == prev:
                        a = inv_p
                    elif _is_neighbour(indptr, indices, prev, x):
                        a = 1.0
                    else:
                        a = inv_q
                    if np.random.random() * top < a:
                        break
                    x = indices[lo + np.random.randint(deg)]
            out[w, i] = x
            prev, v = v, x
    return out


@numba.njit(nogil=True, cache=True)
def window_pairs(walks, window, lhs, rhs):
    """(walk[i], walk[j]) for 0 < j - i <= window into lhs, rhs int32 [>= W * pairs_per_walk];
    stops at -1; drops pairs of a node with itself. Returns the count written."""
    k = 0
    n_w, length = walks.shape
    for w in range(n_w):
        for i in range(length):
            a = walks[w, i]
            if a < 0:
                break
            for j in range(i + 1, min(i + window, length - 1) + 1):
                b = walks[w, j]
                if b < 0:
                    break
                if a != b:
                    lhs[k] = a
                    rhs[k] = b
                    k += 1
    return k


def walk_pairs(graph: WalkGraph, cfg: WalksConfig, epoch: int = 0):
    """(lhs, rhs) int32 node-id pieces of every walk: `cfg.per_node` rounds, each a seeded
    permutation of all nodes as starts, `PIECE_WALKS` walks a piece; the same for the same seed
    and `epoch`."""
    cap = PIECE_WALKS * pairs_per_walk(cfg.length, cfg.window)
    for r in range(cfg.per_node):
        starts = np.random.default_rng([cfg.seed, epoch, r]).permutation(graph.num_nodes).astype(np.int32)
        for s in range(0, graph.num_nodes, PIECE_WALKS):
            part = starts[s : s + PIECE_WALKS]
            seed = int(np.random.SeedSequence([cfg.seed, epoch, r, s]).generate_state(1)[0] >> 1)
            walks = random_walks(graph.indptr, graph.indices, part, cfg.length, cfg.p, cfg.q, seed,
                                 np.empty((len(part), cfg.length), np.int32))
            lhs, rhs = np.empty(cap, np.int32), np.empty(cap, np.int32)
            n = window_pairs(walks, cfg.window, lhs, rhs)
            yield lhs[:n], rhs[:n]


def check(cfg: WalksConfig, ds: Dataset) -> int:
    """The entity type the walks run on (index); ConfigError for values or data they cannot use."""
    if cfg.length < 2 or cfg.window < 1 or cfg.per_node < 0 or not (cfg.p > 0 and cfg.q > 0):
        raise ConfigError(f"data.walks: length must be >= 2, window >= 1, per_node >= 0, p and q > 0; "
                          f"got length={cfg.length} window={cfg.window} per_node={cfg.per_node} "
                          f"p={cfg.p} q={cfg.q}")
    types = np.unique(ds.relation_types)
    if len(types) != 1:
        raise ConfigError(f"data.walks: walks need one entity type at both ends of every relation; "
                          f"{ds.name} has {len(types)} ({', '.join(ds.entity_types)})")
    return int(types[0])


def walk_edges(cfg: WalksConfig, ds: Dataset, layout: PartitionLayout, location: str | None = None,
               epoch: int = 0) -> BucketedEdges | EdgeBucketStore:
    """The walks' pairs of the dataset's train graph, bucketed by `layout`'s partitions: in memory,
    or written at `location` (storage/edges layout) through per-bucket spills and read from there."""
    t = check(cfg, ds)
    train = ds.splits.get("train")
    if train is None:  # a prepared dataset: its graph is read back from its buckets
        from jgraph.data.prepared import train_edges

        train = train_edges(ds)
    tp = layout.types[t]
    graph = WalkGraph(train.lhs, train.rhs, tp.count)
    n_l = n_r = tp.num_partitions
    t0 = time.perf_counter()

    def place(piece):  # in a worker thread: node ids -> (bucket, rows in partitions), by bucket
        lhs, rhs = piece
        lo, ro = tp.offset_of[lhs].astype(np.int32), tp.offset_of[rhs].astype(np.int32)
        if n_l == 1:
            return lo, ro, np.array([0, len(lo)])
        key = tp.part_of[lhs].astype(np.int64) * n_r + tp.part_of[rhs]
        order = np.argsort(key, kind="stable")
        return lo[order], ro[order], np.searchsorted(key[order], np.arange(n_l * n_r + 1))

    placed = ordered_map(place, walk_pairs(graph, cfg, epoch))
    folder = Path(tempfile.mkdtemp(prefix="jgraph-walks-")) if location else None
    spills = [RecordSpill(folder / f"bucket.{b}", PAIR) for b in range(n_l * n_r)] if folder else None
    held: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in range(n_l * n_r)]
    total = 0
    for lo, ro, bounds in placed:
        total += len(lo)
        for b in np.flatnonzero(np.diff(bounds)):
            sl = slice(bounds[b], bounds[b + 1])
            if spills is not None:
                rec = np.empty(sl.stop - sl.start, PAIR)
                rec["lhs"], rec["rhs"] = lo[sl], ro[sl]
                spills[b].append(rec)
            else:
                held[b].append((lo[sl], ro[sl]))
    log.info("walks: %d per node of %d nodes, length %d, window %d, p=%g q=%g: %s pairs in %.1fs",
             cfg.per_node, tp.count, cfg.length, cfg.window, cfg.p, cfg.q, f"{total:,}",
             time.perf_counter() - t0)
    if spills is None:
        counts = [sum(len(x) for x, _ in h) for h in held]
        lo = np.concatenate([x for h in held for x, _ in h] or [np.zeros(0, np.int32)])
        ro = np.concatenate([y for h in held for _, y in h] or [np.zeros(0, np.int32)])
        start = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        rel = np.broadcast_to(np.int32(0), lo.shape)  # every pair is an edge of relation 0
        return BucketedEdges(lo, ro, rel, None, np.arange(len(lo), dtype=np.int64), start, n_l, n_r)
    writer = BucketWriter(location, n_l, n_r, weight=False)
    for b, spill in enumerate(spills):
        pieces = ((x["lhs"], x["rhs"], np.zeros(len(x), np.int32), None) for _, x in spill.pieces(1 << 20))
        writer.write_pieces(divmod(b, n_r), spill.count, pieces)
        spill.remove()
    writer.finish()
    folder.rmdir()
    return EdgeBucketStore(location)


__all__ = ["WalkGraph", "pairs_per_walk", "random_walks", "walk_edges", "walk_pairs",
           "window_pairs"]
