"""The jitted ranking steps: full ranking of a block of queries against every candidate of a type,
and PBG's sampled protocol (each positive among its chunk's batch + uniform negatives).

Tie rules (`ties`, see jgraph/core/metrics.py): rank = 1 + #higher + share x #equal, share 1/2
(realistic), 1 (pessimistic, PBG's) or 0 (optimistic). Shapes: B queries, N candidates, F filter
pairs, C chunks, P positives per chunk.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp

from jgraph.core.hashrng import batch_seed
from jgraph.core.metrics import TIE_SHARE
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.scorer import float32_matmuls
from jgraph.core.step import NegativeSpec, batch_scores, gather_ids, side_blocks

Array = Any


def tie_rank(greater: Array, equal: Array, ties: str) -> Array:
    """float [...] rank = 1 + greater + share x equal (jax or numpy counts alike)."""
    return 1.0 + greater * 1.0 + TIE_SHARE[ties] * equal


def make_query_ranks(model: Model, ties: str):
    """fn(params, emb, fixed_ids [B], rel [B], cand_lo, target [B], filter_q [F], filter_c [F],
    valid [B], excluded [B], own [B], *, num_cands, side) -> (raw rank [B], filtered rank [B],
    filtered #candidates [B], own above raw [B] bool, own above filtered [B] bool).

    Full ranking of each query's true entity among all `num_cands` rows of its type, which start
    at row `cand_lo` of `emb`. `side` 0 replaces the head, 1 the tail. Filter pairs (query index,
    candidate) are other known true entities, removed for the filtered rank (padding: candidate
    index num_cands, dropped). `excluded` is one candidate per query removed from both ranks (the
    query's own entity with eval.exclude_self; num_cands: none). `own` is the query's own entity
    as a candidate index (num_cands: not a candidate, or the answer itself); "own above" says that
    it scores strictly higher than the answer (filtered: and is no other known answer), whether
    or not `excluded` removes it from the ranks. Padding queries get rank 0 and False.
    """

    @partial(jax.jit, static_argnames=("num_cands", "side"))
    @float32_matmuls
    def ranks(params, emb, fixed_ids, rel, cand_lo, target, filter_q, filter_c, valid, excluded, own,
              *, num_cands, side):
        types = jnp.asarray(model.relation_types)[rel]  # [B, 2]
        fixed = emb[fixed_ids]
        cands = jax.lax.dynamic_slice_in_dim(emb, cand_lo, num_cands, axis=0)
        scores = model.query_scores(params, fixed, types[:, 1 - side], rel, cands,
                                    types[0, side], side)
        pos = jnp.take_along_axis(scores, target[:, None], axis=1)  # [B, 1]
        col = jnp.arange(num_cands)[None, :]
        others = (col != target[:, None]) & (col != excluded[:, None])
        known = jnp.zeros(scores.shape, bool).at[filter_q, filter_c].set(True, mode="drop")
        removed = known & others
        greater, equal = (scores > pos) & others, (scores == pos) & others
        raw = tie_rank(jnp.sum(greater, 1), jnp.sum(equal, 1), ties)
        filt = tie_rank(jnp.sum(greater & ~removed, 1), jnp.sum(equal & ~removed, 1), ties)
        num = num_cands - jnp.sum(removed, axis=1) - jnp.sum(col == excluded[:, None], axis=1)
        is_own = (col == own[:, None]) & (col != target[:, None])  # [B, N], at most one per row
        own_raw = jnp.any(is_own & (scores > pos), axis=1)
        own_filt = jnp.any(is_own & (scores > pos) & ~known, axis=1)
        return (jnp.where(valid, raw, 0.0), jnp.where(valid, filt, 0.0), jnp.where(valid, num, 0),
                own_raw & valid, own_filt & valid)

    return ranks


def make_sampled_ranks(model: Model, neg: NegativeSpec, ties: str, num_rows: int,
                       exclude_self: bool = False):
    """fn(params, emb, batch, layout, key, rows_of=None) -> per side (rank [C, P], auc [C, P],
    valid [C, P]).

    PBG's protocol: each positive ranked among its batch + uniform negatives; with `exclude_self`,
    a negative that is the query's own entity does not count. rows_of: int [M] sorted row ids that
    `emb` [M, D] holds (the rows a streamed evaluation gathered, jgraph/ranking.py), else emb is
    every row [num_rows, D].
    """

    @jax.jit
    @float32_matmuls
    def ranks(params, emb, batch: Batch, layout: Layout, key, rows_of=None):
        if neg.all_negs:  # (max_norm: the caller renormalises emb once)
            rows, ids = emb, None
        else:
            ids = side_blocks(neg, gather_ids(model, neg, batch, layout, batch_seed(key, 0)))
            rows = tuple(emb[i if rows_of is None else jnp.searchsorted(rows_of, i)] for i in ids)
        lhs_side, rhs_side, _ = batch_scores(model, neg, params, rows, batch, layout, num_rows)
        out = []
        p = batch.lhs.shape[1]
        for side, s in enumerate((lhs_side, rhs_side)):
            if s is None:
                out.append(None)
                continue
            valid = s.valid
            if exclude_self and ids is not None:
                # candidate ids of this side's negative columns (its block), and the query's own
                # id (the other side's positive)
                cand = ids[side] if neg.use_batch else ids[side][:, p:]
                own = ids[1 - side][:, :p]
                valid = valid & (cand[:, None, :] != own[:, :, None])
            pos = s.pos[..., None]
            greater = jnp.sum((s.neg > pos) & valid, axis=-1)
            equal = jnp.sum((s.neg == pos) & valid, axis=-1)
            below = jnp.sum((s.neg < pos) & valid, axis=-1)
            num = jnp.maximum(jnp.sum(valid, axis=-1), 1)
            auc = (below + 0.5 * equal) / num
            out.append((tie_rank(greater, equal, ties), auc, batch.lhs >= 0))
        return tuple(out)

    return ranks


def make_sampled_ids(model: Model, neg: NegativeSpec):
    """fn(batch, layout, key) -> (lhs ids [C, P + U], rhs ids [C, P + U]): the rows that
    make_sampled_ranks' fn with the same arguments gathers (a streamed evaluation reads them)."""

    @jax.jit
    def ids(batch: Batch, layout: Layout, key):
        return side_blocks(neg, gather_ids(model, neg, batch, layout, batch_seed(key, 0)))

    return ids
