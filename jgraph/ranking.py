"""Link-prediction evaluation: full ranking (raw and filtered) and PBG's sampled protocol.

Full ranking scores every query (h, r, ?) and (?, r, t) against every entity of the replaced side's
type, with the training scorer. Filtered: the other true answers known from train + valid + test
are removed before ranking (see jgraph/core/metrics.py for ties and AUC). Sampled: each positive is
ranked among batch + uniform negatives drawn as in training (for graphs too large to rank against
every entity); ties there default to the same rule.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.config import EvalConfig
from jgraph.core.metrics import SIDES, RankSums, auc_from_rank, combine
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.step import NegativeSpec, make_query_ranks, make_sampled_ranks
from jgraph.data.dataset import Dataset, Edges
from jgraph.plan.batches import make_batches


def eval_edges(ds: Dataset, split: str, max_edges: int | None, seed: int) -> Edges:
    if split not in ds.splits:
        raise KeyError(f"no {split!r} split in dataset {ds.name!r} (has {', '.join(ds.splits)})")
    e = ds.splits[split]
    if max_edges is not None and len(e) > max_edges:
        idx = np.sort(np.random.default_rng(seed).choice(len(e), max_edges, replace=False))
        e = e.take(idx)
    return e


class KnownAnswers:
    """All true answers of (fixed entity, relation) queries on one side, from every split."""

    def __init__(self, ds: Dataset, side: int, extra: list[Edges] = ()) -> None:
        r = max(ds.num_relations, 1)
        fixed, ans, rel = [], [], []
        for e in [*ds.splits.values(), *extra]:
            fixed.append(e.rhs if side == 0 else e.lhs)
            ans.append(e.lhs if side == 0 else e.rhs)
            rel.append(e.rel)
        code = np.concatenate(fixed).astype(np.int64) * r + np.concatenate(rel)
        order = np.argsort(code, kind="stable")
        self.codes, self.answers, self.r = code[order], np.concatenate(ans)[order], r

    def pairs(self, fixed: np.ndarray, rel: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(query index [F], answer id [F]) for a batch of queries."""
        code = fixed.astype(np.int64) * self.r + rel
        lo = np.searchsorted(self.codes, code, "left")
        hi = np.searchsorted(self.codes, code, "right")
        lens = hi - lo
        q = np.repeat(np.arange(code.size), lens)
        start = np.repeat(lo - (np.cumsum(lens) - lens), lens)
        return q, self.answers[start + np.arange(q.size)]


def _pad_pow2(q: np.ndarray, c: np.ndarray, fill_c: int) -> tuple[np.ndarray, np.ndarray]:
    size = 1 << max(int(q.size - 1).bit_length(), 0) if q.size else 1
    fq = np.zeros(size, np.int32)
    fc = np.full(size, fill_c, np.int32)
    fq[: q.size], fc[: c.size] = q, c
    return fq, fc


def full_ranking(model: Model, params: dict, emb: jax.Array, type_offsets: np.ndarray, ds: Dataset,
                 split: str, ecfg: EvalConfig, protocols: list[str], max_edges: int | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """{protocol: {"lhs": metrics, "rhs": metrics, "avg": metrics}} for raw and/or filtered."""
    edges = eval_edges(ds, split, max_edges, ecfg.seed)
    emb = model.renorm(emb)
    ranks_fn = make_query_ranks(model, ecfg.ties)
    counts = np.array([ds.num_entities(t) for t in ds.entity_types], np.int64)
    sums = {p: {s: RankSums(tuple(ecfg.hits)) for s in SIDES} for p in ("raw", "filtered")}
    b = ecfg.batch_size
    extra = []
    if "filtered" in protocols and ds.train_buckets is not None and "train" not in ds.splits:
        from jgraph.data.prepared import train_edges

        extra = [train_edges(ds)]  # a prepared dataset keeps its train edges in buckets
    for side in (0, 1):
        known = KnownAnswers(ds, side, extra) if "filtered" in protocols else None
        fixed = edges.rhs if side == 0 else edges.lhs
        target = edges.lhs if side == 0 else edges.rhs
        fixed_type = ds.relation_types[edges.rel, 1 - side]
        cand_type = ds.relation_types[edges.rel, side]
        fixed_rows = (type_offsets[fixed_type] + fixed).astype(np.int32)
        key = cand_type.astype(np.int64)
        if model.groups_queries_by_relation(side):
            key = key * ds.num_relations + edges.rel
        order = np.argsort(key, kind="stable")
        bounds = np.flatnonzero(np.r_[True, key[order][1:] != key[order][:-1], True])
        for g0, g1 in zip(bounds[:-1], bounds[1:], strict=True):
            ct = int(cand_type[order[g0]])
            for s in range(g0, g1, b):
                q = order[s : min(s + b, g1)]
                valid = np.zeros(b, bool)
                valid[: q.size] = True
                qp = np.concatenate([q, np.full(b - q.size, q[0])])
                if known is not None:
                    fq, fc = known.pairs(fixed[q], edges.rel[q])
                    fq, fc = _pad_pow2(fq, fc, int(counts[ct]))
                else:
                    fq, fc = _pad_pow2(np.zeros(0, np.int32), np.zeros(0, np.int32), int(counts[ct]))
                excluded = np.full(b, int(counts[ct]), np.int32)  # = no candidate
                if ecfg.exclude_self:
                    same = fixed_type[qp] == ct
                    excluded[same] = fixed[qp][same]
                raw, filt, num = jax.device_get(ranks_fn(
                    params, emb, jnp.asarray(fixed_rows[qp]), jnp.asarray(edges.rel[qp]),
                    jnp.int32(type_offsets[ct]), jnp.asarray(target[qp].astype(np.int32)),
                    jnp.asarray(fq), jnp.asarray(fc), jnp.asarray(valid), jnp.asarray(excluded),
                    num_cands=int(counts[ct]), side=side))
                n = q.size
                sums["raw"][SIDES[side]].add(raw[:n], auc_from_rank(raw[:n], counts[ct]))
                sums["filtered"][SIDES[side]].add(filt[:n], auc_from_rank(filt[:n], num[:n]))
    return {p: _report(sums[p]) for p in protocols if p in sums}


def _report(per_side: dict[str, RankSums]) -> dict[str, Any]:
    res = {s: per_side[s].result() for s in SIDES}
    res["avg"] = combine(res)
    return res


def sampled_ranking(model: Model, params: dict, emb: jax.Array, type_offsets: np.ndarray,
                    ds: Dataset, split: str, ecfg: EvalConfig, group_of_rel: np.ndarray | None,
                    max_edges: int | None = None) -> dict[str, Any]:
    """PBG's protocol: rank among `eval.num_batch_negs` batch + `eval.num_uniform_negs` uniform
    negatives per chunk, drawn from every entity of the type."""
    edges = eval_edges(ds, split, max_edges, ecfg.seed)
    emb = model.renorm(emb)
    chunk = ecfg.num_batch_negs or ecfg.num_uniform_negs
    neg = NegativeSpec(num_uniform=ecfg.num_uniform_negs, use_batch=ecfg.num_batch_negs > 0,
                       all_negs=False, sides=(True, True))
    counts = np.array([ds.num_entities(t) for t in ds.entity_types], np.int64)
    num_rows = int(emb.shape[0])
    fn = make_sampled_ranks(model, neg, ecfg.ties, num_rows, ecfg.exclude_self)
    lo = np.repeat(type_offsets[:, None], 2, axis=1).astype(np.int32)
    n = np.repeat(counts[:, None], 2, axis=1).astype(np.int32)
    layout = Layout(jnp.asarray(lo), jnp.asarray(n))
    rt = ds.relation_types[edges.rel]
    lhs, rhs = type_offsets[rt[:, 0]] + edges.lhs, type_offsets[rt[:, 1]] + edges.rhs
    group = None if group_of_rel is None else group_of_rel[edges.rel]
    rng = np.random.default_rng(ecfg.seed)
    batches = make_batches(lhs, rhs, edges.rel, edges.weight, group, chunk, 1, 1, rng)
    sums = {s: RankSums(tuple(ecfg.hits)) for s in SIDES}
    key = jax.random.key(ecfg.seed)
    for i in range(batches.num_batches):
        arrays, _ = batches.block(i, 1)
        batch = Batch(*(jnp.asarray(a[0]) for a in arrays))
        out = jax.device_get(fn(params, emb, batch, layout, jax.random.fold_in(key, i)))
        for s, side_out in zip(SIDES, out, strict=True):
            if side_out is not None:
                rank, auc, valid = side_out
                sums[s].add(rank[valid], auc[valid])
    return _report(sums)
