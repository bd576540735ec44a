"""Link-prediction evaluation: full ranking (raw and filtered) and PBG's sampled protocol.

Full ranking scores every query (h, r, ?) and (?, r, t) against every entity of the replaced side's
type, with the training scorer. Filtered: the other true answers known from train + valid + test
(on a symmetric dataset each also reversed) are removed before ranking (see jgraph/core/metrics.py
for ties and AUC). Beside the metrics: per relation, the share of queries whose own entity outranks
the answer, and the degree baseline (no learning: candidates ranked by training degree).
Sampled: each positive is ranked among batch + uniform negatives drawn as in training (for graphs
too large to rank against every entity); ties there default to the same rule.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.config import EvalConfig
from jgraph.core.metrics import SIDES, RankSums, auc_from_rank, combine, degree_ranks, per_relation
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.ranks import make_query_ranks, make_sampled_ids, make_sampled_ranks
from jgraph.core.step import NegativeSpec
from jgraph.data.dataset import Dataset, Edges
from jgraph.plan.batches import make_batches
from jgraph.plan.partition import PartitionLayout


def eval_edges(ds: Dataset, split: str, max_edges: int | None, seed: int) -> Edges:
    if split not in ds.splits:
        raise KeyError(f"no {split!r} split in dataset {ds.name!r} (has {', '.join(ds.splits)})")
    e = ds.splits[split]
    if max_edges is not None and len(e) > max_edges:
        idx = np.sort(np.random.default_rng(seed).choice(len(e), max_edges, replace=False))
        e = e.take(idx)
    return e


class KnownAnswers:
    """All true answers of (fixed entity, relation) queries on one side, from every split (on a
    symmetric dataset also each edge reversed, where the relation's two types are the same)."""

    def __init__(self, ds: Dataset, side: int, extra: list[Edges] = ()) -> None:
        r = max(ds.num_relations, 1)
        fixed, ans, rel = [], [], []
        for e in [*ds.splits.values(), *extra]:
            fixed.append(e.rhs if side == 0 else e.lhs)
            ans.append(e.lhs if side == 0 else e.rhs)
            rel.append(e.rel)
            if ds.symmetric:
                same = ds.relation_types[e.rel, 0] == ds.relation_types[e.rel, 1]
                fixed.append((e.lhs if side == 0 else e.rhs)[same])
                ans.append((e.rhs if side == 0 else e.lhs)[same])
                rel.append(e.rel[same])
        code = np.concatenate(fixed).astype(np.int64) * r + np.concatenate(rel)
        answers = np.concatenate(ans).astype(np.int64)
        order = np.lexsort((answers, code))
        code, answers = code[order], answers[order]
        first = np.r_[True, (code[1:] != code[:-1]) | (answers[1:] != answers[:-1])]
        self.codes, self.answers, self.r = code[first], answers[first], r  # unique pairs

    def pairs(self, fixed: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index [F], answer id [F]) for a batch of queries, each pair once."""
        code = fixed.astype(np.int64) * self.r + rel
        lo = np.searchsorted(self.codes, code, "left")
        hi = np.searchsorted(self.codes, code, "right")
        lens = hi - lo
        q = np.repeat(np.arange(code.size), lens)
        start = np.repeat(lo - (np.cumsum(lens) - lens), lens)
        return q, self.answers[start + np.arange(q.size)]


def train_degrees(ds: Dataset, train: Edges) -> list[np.ndarray]:
    """int64 [count] per entity type: the training edges each entity is an end of."""
    deg = [np.zeros(ds.num_entities(t), np.int64) for t in ds.entity_types]
    for side, ids in ((0, train.lhs), (1, train.rhs)):
        types = ds.relation_types[train.rel, side]
        for t in range(len(deg)):
            deg[t] += np.bincount(ids[types == t], minlength=deg[t].size)
    return deg


def _pad_pow2(q: np.ndarray, c: np.ndarray, fill_c: int) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << max(int(q.size - 1).bit_length(), 0) if q.size else 1
    fq = np.zeros(size, np.int32)
    fc = np.full(size, fill_c, np.int32)
    fq[: q.size], fc[: c.size] = q, c
    return fq, fc


FIELDS = ("rel", "raw", "raw_num", "filtered", "filtered_num", "own_raw", "own_filtered", "degree",
          "degree_num")


def full_ranking(model: Model, params: dict, emb: jax.Array, type_offsets: np.ndarray, ds: Dataset,
                 split: str, ecfg: EvalConfig, protocols: list[str], max_edges: int | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """{protocol: {"lhs", "rhs", "avg": metrics, "per_relation": {name: metrics}}} for raw and/or
    filtered, and "degree_baseline" (lhs, rhs, avg): every candidate ranked by its training degree
    (see metrics.degree_ranks; the query's own entity never a candidate), filtered if asked, else raw
    (a prepared dataset evaluated raw only has none: its train edges are not read).
    Side metrics include "self_outranks_share": the share of queries whose own entity (the end
    that stays) scores above the answer and is no other known answer (see make_query_ranks)."""
    edges = eval_edges(ds, split, max_edges, ecfg.seed)
    filtered = "filtered" in protocols
    train = ds.splits.get("train")
    extra = []
    if ds.train_buckets is not None and train is None and filtered:
        from jgraph.data.prepared import train_edges

        train = train_edges(ds)  # a prepared dataset keeps its train edges in buckets (read only
        extra = [train]  # for the filter, which needs them anyway; raw alone: no degree baseline)
    degrees = train_degrees(ds, train) if train is not None else None
    per_side = [_rank_side(model, params, model.renorm(emb), type_offsets, ds, edges, ecfg, side,
                           KnownAnswers(ds, side, extra) if filtered else None, degrees)
                for side in (0, 1)]
    hits = tuple(ecfg.hits)
    out: dict[str, dict[str, Any]] = {}
    for p in [p for p in ("raw", "filtered") if p in protocols]:
        res = {s: {**_metrics(r[p], r[f"{p}_num"], hits),
                   "self_outranks_share": float(np.mean(r[f"own_{p}"])) if r[p].size else 0.0}
               for s, r in zip(SIDES, per_side, strict=True)}
        both = {k: np.concatenate([r[k] for r in per_side]) for k in ("rel", p, f"own_{p}")}
        rel_hits = tuple(k for k in (1, 10) if k in hits)
        out[p] = {**res, "avg": combine(res), "per_relation": per_relation(
            both["rel"], both[p], both[f"own_{p}"], ds.relation_names, rel_hits)}
    if degrees is not None and out:
        res = {s: _metrics(r["degree"], r["degree_num"], hits) for s, r in zip(SIDES, per_side, strict=True)}
        out["degree_baseline"] = {**res, "avg": combine(res)}
    return out


def _metrics(ranks: np.ndarray, num: np.ndarray, hits: tuple[int, ...]) -> dict[str, float]:
    sums = RankSums(hits)
    sums.add(ranks, auc_from_rank(ranks, num))
    return sums.result()


def _rank_side(model: Model, params: dict, emb: jax.Array, type_offsets: np.ndarray, ds: Dataset,
               edges: Edges, ecfg: EvalConfig, side: int, known: KnownAnswers | None,
               degrees: list[np.ndarray] | None) -> dict[str, np.ndarray]:
    """Per-query arrays [Q] (FIELDS) of one side, in query order: the model's raw and filtered
    ranks and candidate counts, whether the query's own entity scores above the answer, and the
    degree baseline's rank and candidate count (filtered when `known` is given)."""
    ranks_fn = make_query_ranks(model, ecfg.ties)
    counts = np.array([ds.num_entities(t) for t in ds.entity_types], np.int64)
    b = ecfg.batch_size
    fixed = edges.rhs if side == 0 else edges.lhs
    target = edges.lhs if side == 0 else edges.rhs
    fixed_type = ds.relation_types[edges.rel, 1 - side]
    cand_type = ds.relation_types[edges.rel, side]
    fixed_rows = (type_offsets[fixed_type] + fixed).astype(np.int32)
    rec = {k: np.zeros(len(edges), bool if k.startswith("own") else np.float64) for k in FIELDS}
    rec["rel"] = edges.rel.astype(np.int64)
    key = cand_type.astype(np.int64)
    if model.groups_queries_by_relation(side):
        key = key * ds.num_relations + edges.rel
    order = np.argsort(key, kind="stable")
    bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
    for g0, g1 in zip(bounds[:-1], bounds[1:], strict=True):
        ct = int(cand_type[order[g0]])
        n_c = int(counts[ct])
        for s in range(g0, g1, b):
            q = order[s : min(s + b, g1)]
            n = q.size
            valid = np.zeros(b, bool)
            valid[:n] = True
            qp = np.concatenate([q, np.full(b - n, q[0])])
            if known is not None:
                pq, pc = known.pairs(fixed[q], edges.rel[q])
            else:
                pq, pc = np.zeros(0, np.int64), np.zeros(0, np.int64)
            fq, fc = _pad_pow2(pq, pc, n_c)
            same = fixed_type[qp] == ct
            own = np.where(same, fixed[qp], n_c).astype(np.int32)  # n_c: no candidate
            excluded = own if ecfg.exclude_self else np.full(b, n_c, np.int32)
            out = jax.device_get(ranks_fn(
                params, emb, jnp.asarray(fixed_rows[qp]), jnp.asarray(edges.rel[qp]),
                jnp.int32(type_offsets[ct]), jnp.asarray(target[qp].astype(np.int32)),
                jnp.asarray(fq), jnp.asarray(fc), jnp.asarray(valid), jnp.asarray(excluded),
                jnp.asarray(own), num_cands=n_c, side=side))
            raw, filt, num, own_raw, own_filt = (np.asarray(a)[:n] for a in out)
            rec["raw"][q], rec["filtered"][q], rec["filtered_num"][q] = raw, filt, num
            rec["raw_num"][q] = n_c
            rec["own_raw"][q], rec["own_filtered"][q] = own_raw, own_filt
            if degrees is not None:
                rec["degree"][q], rec["degree_num"][q] = degree_ranks(
                    degrees[ct], target[q], own[:n], pq, pc, ecfg.ties)
    return rec


def _report(per_side: dict[str, RankSums]) -> dict[str, Any]:
    res = {s: per_side[s].result() for s in SIDES}
    res["avg"] = combine(res)
    return res


def _sampled_plan(model: Model, ds: Dataset, edges: Edges, ecfg: EvalConfig, type_offsets: np.ndarray,
                  group_of_rel: np.ndarray | None):
    """(negative spec, device Layout of every type, batches): the chunks of PBG's protocol."""
    chunk = ecfg.num_batch_negs or ecfg.num_uniform_negs
    neg = NegativeSpec(num_uniform=ecfg.num_uniform_negs, use_batch=ecfg.num_batch_negs > 0,
                       all_negs=False, sides=(True, True))
    counts = np.array([ds.num_entities(t) for t in ds.entity_types], np.int64)
    lo = np.repeat(type_offsets[:, None], 2, axis=1).astype(np.int32)
    n = np.repeat(counts[:, None], 2, axis=1).astype(np.int32)
    layout = Layout(jnp.asarray(lo), jnp.asarray(n))
    rt = ds.relation_types[edges.rel]
    lhs, rhs = type_offsets[rt[:, 0]] + edges.lhs, type_offsets[rt[:, 1]] + edges.rhs
    group = None if group_of_rel is None else group_of_rel[edges.rel]
    rng = np.random.default_rng(ecfg.seed)
    return neg, layout, make_batches(lhs, rhs, edges.rel, edges.weight, group, chunk, 1, 1, rng)


def _sampled_sums(fn, params, emb, batches, layout, ecfg: EvalConfig, rows_of=None) -> dict[str, Any]:
    sums = {s: RankSums(tuple(ecfg.hits)) for s in SIDES}
    key = jax.random.key(ecfg.seed)
    for i in range(batches.num_batches):
        arrays, _ = batches.block(i, 1)
        batch = Batch(*(jnp.asarray(a[0]) for a in arrays))
        out = jax.device_get(fn(params, emb, batch, layout, jax.random.fold_in(key, i), rows_of))
        for s, side_out in zip(SIDES, out, strict=True):
            if side_out is not None:
                rank, auc, valid = side_out
                sums[s].add(rank[valid], auc[valid])
    return _report(sums)


def sampled_ranking(model: Model, params: dict, emb: jax.Array, type_offsets: np.ndarray,
                    ds: Dataset, split: str, ecfg: EvalConfig, group_of_rel: np.ndarray | None,
                    max_edges: int | None = None) -> dict[str, Any]:
    """PBG's protocol: rank among `eval.num_batch_negs` batch + `eval.num_uniform_negs` uniform
    negatives per chunk, drawn from every entity of the type. emb: every row [N, D] (for tables
    larger than memory: streamed_sampled_ranking, the same ranks)."""
    edges = eval_edges(ds, split, max_edges, ecfg.seed)
    neg, layout, batches = _sampled_plan(model, ds, edges, ecfg, type_offsets, group_of_rel)
    fn = make_sampled_ranks(model, neg, ecfg.ties, int(emb.shape[0]), ecfg.exclude_self)
    return _sampled_sums(fn, params, model.renorm(emb), batches, layout, ecfg)


def streamed_sampled_ranking(model: Model, params: dict, parts: PartitionLayout,
                             rows_of: Callable[[int, int], np.ndarray], ds: Dataset, split: str,
                             ecfg: EvalConfig, group_of_rel: np.ndarray | None,
                             max_edges: int | None = None) -> dict[str, Any]:
    """sampled_ranking without every row in memory: the same chunks and negatives (so the same
    ranks), but only the rows they touch are gathered, reading one partition at a time
    (rows_of(t, p) -> [sizes[p], D], as OpenRun.partition reads them). Memory: one partition
    plus the touched rows (at most 2 x (edges + chunks x uniform negatives) x D floats)."""
    edges = eval_edges(ds, split, max_edges, ecfg.seed)
    counts = np.array([tp.count for tp in parts.types], np.int64)
    type_offsets = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64)
    neg, layout, batches = _sampled_plan(model, ds, edges, ecfg, type_offsets, group_of_rel)
    ids_fn, key, touched = make_sampled_ids(model, neg), jax.random.key(ecfg.seed), []
    for i in range(batches.num_batches):
        arrays, _ = batches.block(i, 1)
        batch = Batch(*(jnp.asarray(a[0]) for a in arrays))
        touched += [np.unique(np.asarray(x)) for x in jax.device_get(ids_fn(batch, layout,
                                                                             jax.random.fold_in(key, i)))]
    need = np.unique(np.concatenate(touched)) if touched else np.zeros(0, np.int64)
    need = need[(need >= 0) & (need < counts.sum())]
    rows = np.zeros((max(need.size, 1), model.dimension), np.float32)
    for t, tp in enumerate(parts.types):
        sel = np.flatnonzero((need >= type_offsets[t]) & (need < type_offsets[t] + tp.count))
        ent = need[sel] - type_offsets[t]
        part = tp.part_of[ent]
        for p in np.unique(part):  # one partition in memory at a time
            here = part == p
            rows[sel[here]] = rows_of(t, int(p))[tp.offset_of[ent[here]]]
    fn = make_sampled_ranks(model, neg, ecfg.ties, int(counts.sum()), ecfg.exclude_self)
    return _sampled_sums(fn, params, model.renorm(jnp.asarray(rows)), batches, layout, ecfg,
                         jnp.asarray(np.maximum(need, 0).astype(np.int32)))


def full_ranking_bytes(counts: list[int], dimension: int) -> int:
    """Bytes of every entity's row in float32, the table full ranking gathers."""
    return int(sum(counts)) * dimension * 4


def check_full_ranking_fits(counts: list[int], dimension: int, available: int | None = None) -> None:
    """Refuse (OptionError, one line) a full ranking whose gathered table would take more than half
    the memory available now (MemAvailable, Linux; no check elsewhere)."""
    from jgraph.errors import OptionError

    need = full_ranking_bytes(counts, dimension)
    available = _available_bytes() if available is None else available
    if available is not None and need > available // 2:
        raise OptionError(
            f"full ranking (raw/filtered) gathers every row of {sum(counts):,} entities x {dimension} "
            f"({need / 2**30:.1f} GiB), more than half the {available / 2**30:.1f} GiB available: "
            "evaluate with the sampled protocol (--protocol sampled / eval.protocols=[sampled]), "
            "which streams partition by partition")


def _available_bytes() -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
