"""The scoring model: one batch of chunked positives and their negatives -> scores, loss, penalty.

Pure functions over already-gathered embeddings (the step does the gathering). PBG semantics
(pbg-reference §3): in standard mode the operator acts on the right-hand side only, so rhs
negatives pass through it; with `reciprocal` (PBG dynamic relations) an edge is scored twice,
c(x, h_r(y)) against lhs negatives and c(y, g_r(x)) against rhs negatives, and negatives never
pass through an operator.

Shapes: C chunks, P positives per chunk, U uniform negatives per chunk, N negatives per positive,
D dimension, R relations, T entity types, K rows in the working table.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.core.scorer import OPERATORS, REGULARIZERS, Operator, comparator_for, loss_function
from jgraph.plan.partition import Layout  # noqa: F401  (re-exported: where a bucket's rows are)

Array = Any


class Batch(NamedTuple):
    """A batch of C chunks of P positives (fixed shapes; built on the host by jgraph.plan.batches)."""

    lhs: Array  # int32 [C, P] working-table rows; -1 marks padding
    rhs: Array  # int32 [C, P]
    rel: Array  # int32 [C, P] relation ids (one relation per chunk in standard mode)
    weight: Array  # float32 [C, P] per-edge weights (1 when the data has none)


class SideScores(NamedTuple):
    """One side's scores: each positive against the negatives that replace that side."""

    pos: Array  # [C, P]
    neg: Array  # [C, P, N]
    valid: Array  # bool [C, P, N] (False: the positive itself, padding, another type's rows)


@partial(jax.custom_vjp, nondiff_argnums=(1,))
def positives_and_block(block: Array, p: int) -> tuple[Array, Array]:
    """(block[:, :p], block) for a block [C, W, D] whose first p rows per chunk are the positives.

    The same values as slicing; the gradient differs only in how it is assembled: the positives'
    gradient is added in place into the block's ([:, :p] of a buffer the backward pass already
    owns), where autodiff's pad-and-add made XLA's CPU backend build the block's gradient in one
    loop over every element with a select per source (about 10% of a d=100 training step)."""
    return block[:, :p], block


def _pab_fwd(block, p):
    return positives_and_block(block, p), p


def _pab_bwd(p, _, g):
    g_pos, g_block = g
    head = jax.lax.slice_in_dim(g_block, 0, p, axis=1) + g_pos
    return (jax.lax.dynamic_update_slice_in_dim(g_block, head, 0, axis=1),)


positives_and_block.defvjp(_pab_fwd, _pab_bwd)


@dataclass(frozen=True, eq=False)
class ModelSpec:
    """What a Model is resolved from (assembly.build_model makes one from a run's config)."""

    dimension: int
    operator_of_relation: list[str]  # registry name per relation id
    relation_types: np.ndarray  # int [R, 2]: entity type of (lhs, rhs)
    relation_weight: np.ndarray | None = None  # float [R]; None: 1 for every relation
    num_types: int = 1
    comparator: str = "dot"
    bias: bool = False
    loss: str = "ranking"
    margin: float = 0.1
    regularizer: str = "n3"
    regularization_coef: float = 0.0
    reciprocal: bool = False
    global_emb: bool = False
    max_norm: float | None = None
    compute_dtype: str = "float32"
    adversarial_temperature: float = 0.0  # > 0: self-adversarial negatives (scorer.loss_function)
    featurized: tuple = ()  # ((type, its feature type), ...): featurized types (core/features.py)
    encoder_hidden: tuple = ()  # per featurized type: its encoder's width (0: the plain mean)
    frozen_types: tuple = ()  # type ids whose rows (and encoder, global vector) stay fixed
    frozen_relations: tuple = ()  # relation ids whose operator parameters stay fixed


class Model:
    """The scorer of a run, resolved from names: operators, comparator, loss, regularizer.

    Static (python) configuration closed over by the jitted step; relation parameters are passed
    in as a pytree: {"rhs": {kind: params}, "lhs": {kind: params} (reciprocal), "global": [T, D]}.
    """

    def __init__(self, spec: ModelSpec) -> None:
        self.spec = spec
        ops = list(spec.operator_of_relation)
        self.dimension = spec.dimension
        self.kinds = sorted(set(ops))
        self.operators: dict[str, Operator] = {k: OPERATORS.get(k) for k in self.kinds}
        self.kind_of_relation = np.array([self.kinds.index(k) for k in ops], np.int32)
        self.num_relations = len(ops)
        self.relation_types = np.asarray(spec.relation_types, np.int32).reshape(-1, 2)
        weight = np.ones(len(ops)) if spec.relation_weight is None else spec.relation_weight
        self.relation_weight = np.asarray(weight, np.float32)
        self.num_types = spec.num_types
        self.comparator = comparator_for(spec.comparator, spec.bias)
        self.loss_fn = loss_function(spec.loss, spec.adversarial_temperature)
        self.margin = float(spec.margin)
        self.reg_fn = REGULARIZERS.get(spec.regularizer).fn if spec.regularization_coef else None
        self.reg_coef = float(spec.regularization_coef)
        self.reciprocal = spec.reciprocal
        self.global_emb = spec.global_emb
        self.max_norm = spec.max_norm
        # training's negative scores: products in bfloat16, sums in float32 (scorer.neg_dot);
        # None: float32
        self.compute_dtype = jnp.bfloat16 if spec.compute_dtype == "bfloat16" else None
        self.complex = any(op.complex for op in self.operators.values())
        if len(self.kinds) > 1 and self.complex:
            raise ValueError("complex_diagonal cannot be mixed with other operators in one run")

    # ---------------------------------------------------------------- parameters
    def init_params(self) -> dict:
        """Relation parameters: each operator kind holds rows for all R relations (identity init)."""
        sides = ("lhs", "rhs") if self.reciprocal else ("rhs",)
        params: dict = {
            side: {k: op.init(self.num_relations, self.dimension) for k, op in self.operators.items()}
            for side in sides
        }
        if self.global_emb:
            params["global"] = jnp.zeros((self.num_types, self.dimension), jnp.float32)
        if any(self.spec.encoder_hidden):
            from jgraph.core.features import init_encoders

            params["encoder"] = init_encoders(self.spec.featurized, self.spec.encoder_hidden,
                                              self.dimension)
        return params

    # ---------------------------------------------------------------- pieces
    def renorm(self, rows: Array) -> Array:
        """max_norm: rows longer than max_norm are scaled to it (as PBG's lookup does)."""
        if self.max_norm is None:
            return rows
        norm = jnp.sqrt(jnp.sum(rows * rows, axis=-1, keepdims=True))
        scale = jnp.minimum(1.0, self.max_norm / jnp.maximum(norm, 1e-12))
        return rows * jax.lax.stop_gradient(scale)

    def operate(self, side_params: dict, rel: Array, x: Array) -> Array:
        """Apply each relation's operator: rel int [S] broadcastable to x [..., D]."""
        if len(self.kinds) == 1:
            (kind,) = self.kinds
            return self.operators[kind].apply(side_params[kind], rel, x)
        kind_ids = jnp.asarray(self.kind_of_relation)[rel][..., None]
        out = jnp.zeros(jnp.broadcast_shapes(x.shape, kind_ids.shape[:-1] + (x.shape[-1],)), x.dtype)
        for i, kind in enumerate(self.kinds):
            out = jnp.where(kind_ids == i, self.operators[kind].apply(side_params[kind], rel, x), out)
        return out

    def op_penalty(self, side_params: dict, rel: Array) -> Array:
        """N3 of each edge's operator parameters: rel [S] -> [S]."""
        total = jnp.zeros(rel.shape, jnp.float32)
        kind_ids = jnp.asarray(self.kind_of_relation)[rel]
        for i, kind in enumerate(self.kinds):
            op = self.operators[kind]
            if op.reg_params is not None:
                pen = self.reg_fn(op.reg_params(side_params[kind], rel), op.complex)
                total = total + jnp.where(kind_ids == i, pen, 0.0)
        return total

    def add_global(self, params: dict, x: Array, types: Array) -> Array:
        if not self.global_emb:
            return x
        return x + params["global"][types]

    # ---------------------------------------------------------------- scoring
    def side(
        self,
        fixed: Array,  # [C, P, D] prepared embeddings of the side that stays
        cands: Array | None,  # [C, N, D] prepared candidates: the first `num_batch` are the chunk's
        #                       positives on this side (batch negatives), the rest uniform ones
        num_batch: int,  # P when batch negatives are on, else 0
        pos: Array,  # [C, P, D] prepared embeddings of the side being replaced
        batch_valid: Array,  # bool [C, P]
        extra: Array | None = None,  # [K, D] or [C, K, D]: every row of the partition (all_negs)
        extra_valid: Array | None = None,  # bool broadcastable to [C, P, K]
    ) -> SideScores:
        """Scores of one side: each positive against its chunk's candidates (and `extra`)."""
        c, p = batch_valid.shape
        pos_scores = self.comparator.pos(fixed, pos)
        negs, valids = [], []
        if cands is not None:
            n = cands.shape[1]
            negs.append(self.comparator.neg(fixed, cands))
            # mask from iotas (fuses into the loss): a positive is not its own negative, padding
            # positives are no negatives; uniform candidates are always valid
            col = jnp.arange(n)[None, None, :]
            row = jnp.arange(p)[None, :, None]
            cand_ok = jnp.concatenate([batch_valid, jnp.ones((c, n - num_batch), bool)], axis=1) \
                if num_batch else jnp.ones((c, n), bool)
            valids.append(cand_ok[:, None, :] & ((col != row) | (col >= num_batch)))
        if extra is not None:
            scores = self.comparator.neg(fixed, extra)
            negs.append(scores)
            valids.append(jnp.broadcast_to(extra_valid, scores.shape))
        neg = jnp.concatenate(negs, -1) if len(negs) > 1 else negs[0]
        valid = jnp.concatenate(valids, -1) if len(valids) > 1 else valids[0]
        return SideScores(pos_scores, neg, valid)

    def score(
        self,
        params: dict,
        lhs: Array,  # [C, P, D] raw rows of the heads
        rhs: Array,  # [C, P, D] raw rows of the tails
        batch: Batch,
        lhs_extra: Array | None,  # [C, U, D] uniform lhs negatives, [K, D] all rows, or None
        rhs_extra: Array | None,
        lhs_extra_valid: Array | None,  # bool broadcastable to [C, P, U|K]
        rhs_extra_valid: Array | None,
        use_batch: bool,
        sides: tuple[bool, bool],  # (score lhs negatives, score rhs negatives)
        self_negative: bool = False,  # see score_blocks
    ) -> tuple[SideScores | None, SideScores | None, Array]:
        """(lhs-side scores, rhs-side scores, N3 penalty per positive [C, P]).

        The general form: extras ([C, U, D] per chunk or [K, D] all rows) are scored separately
        with their masks. The training step uses `score_blocks`, which takes uniform negatives
        already laid out after the positives."""
        return self.score_blocks(params, lhs, rhs, batch, (0, 0), use_batch, sides,
                                 (lhs_extra, lhs_extra_valid), (rhs_extra, rhs_extra_valid),
                                 self_negative)

    def score_blocks(
        self,
        params: dict,
        lhs_block: Array,  # [C, P + U, D] raw rows: the heads, then uniform lhs negatives
        rhs_block: Array,  # [C, P + U, D] raw rows: the tails, then uniform rhs negatives
        batch: Batch,
        num_uniform: tuple[int, int],  # uniform negatives in each block (0: none on that side)
        use_batch: bool,
        sides: tuple[bool, bool],
        lhs_all: tuple[Array | None, Array | None] = (None, None),  # all_negs: ([K, D], valid)
        rhs_all: tuple[Array | None, Array | None] = (None, None),
        self_negative: bool = False,
    ) -> tuple[SideScores | None, SideScores | None, Array]:
        """Scores from per-chunk candidate blocks (no concatenation needed when the step gathers
        rows in this layout). Returns (lhs side, rhs side, N3 penalty per positive [C, P]).

        self_negative (negatives.self_negative): one more negative column per side, the query's
        own entity: the tail as a candidate head, c(y, g_r(y)), and the head as a candidate tail,
        c(x, g_r(x)) (reciprocal: c(y, h_r(y)), c(x, g_r(x))); valid where the relation's two
        entity types are one and the positive is not itself a self-loop (lhs row == rhs row)."""
        prep = self.comparator.prepare
        c, p = batch.lhs.shape
        valid = batch.lhs >= 0
        rel = batch.rel
        types = jnp.asarray(self.relation_types)[rel]  # [C, P, 2]
        chunk_rel = rel[:, :1]  # [C, 1]: the chunk's relation (standard mode chunks are uniform)
        chunk_types = types[:, :1]  # [C, 1, 2]
        if self.global_emb:
            def block_types(block, side):
                n = block.shape[1] - p
                return jnp.concatenate(
                    [types[..., side], jnp.broadcast_to(chunk_types[..., side], (c, n))], axis=1)

            def all_rows(a, side):
                return (None if a[0] is None else self.add_global(params, a[0], chunk_types[..., side]), a[1])

            lhs_block = self.add_global(params, lhs_block, block_types(lhs_block, 0))
            rhs_block = self.add_global(params, rhs_block, block_types(rhs_block, 1))
            lhs_all, rhs_all = all_rows(lhs_all, 0), all_rows(rhs_all, 1)
        nb = p if use_batch else 0
        self_ok = valid & (types[..., 0] == types[..., 1]) & (batch.lhs != batch.rhs)  # [C, P]

        def with_self(side_scores: SideScores | None, score: Array) -> SideScores | None:
            """side_scores with the column `score` [C, P] (the query's own entity) appended."""
            if side_scores is None or not self_negative:
                return side_scores
            return SideScores(side_scores.pos,
                              jnp.concatenate([side_scores.neg, score[..., None]], axis=-1),
                              jnp.concatenate([side_scores.valid, self_ok[..., None]], axis=-1))

        def cands(block_prepared, side):
            u = num_uniform[side]
            if not use_batch and not u:
                return None
            return block_prepared[:, (0 if use_batch else p) : p + u]

        penalty = jnp.zeros(valid.shape, jnp.float32)
        lhs_side = rhs_side = None
        if not self.reciprocal:
            if self_negative:  # the raw positives too (their gradient added in place, as below)
                x_raw, lhs_block = positives_and_block(lhs_block, p)
                y_raw, rhs_block = positives_and_block(rhs_block, p)
            lp, lb = positives_and_block(prep(lhs_block), p)
            # one relation per chunk
            rp, rb = positives_and_block(prep(self.operate(params["rhs"], chunk_rel, rhs_block)), p)
            if sides[0]:
                all_l = None if lhs_all[0] is None else prep(lhs_all[0])
                lhs_side = self.side(rp, cands(lb, 0), nb, lp, valid, all_l, lhs_all[1])
            if sides[1]:
                all_r = (None if rhs_all[0] is None
                         else prep(self.operate(params["rhs"], chunk_rel, rhs_all[0])))
                rhs_side = self.side(lp, cands(rb, 1), nb, rp, valid, all_r, rhs_all[1])
            if self_negative:
                # the tail as a head: c(y, g_r(y)); the head as a tail: c(x, g_r(x))
                lhs_side = with_self(lhs_side, self.comparator.pos(prep(y_raw), rp))
                gx = prep(self.operate(params["rhs"], chunk_rel, x_raw))
                rhs_side = with_self(rhs_side, self.comparator.pos(lp, gx))
            if self.reg_fn is not None:
                penalty = (
                    self.reg_fn(lp, self.complex)
                    + self.reg_fn(rp, self.complex)
                    + self.op_penalty(params["rhs"], rel)
                )
        else:
            # forward: c(x, h_r(y)) against lhs negatives; reverse: c(y, g_r(x)) against rhs ones.
            lhs, lhs_block = positives_and_block(lhs_block, p)
            rhs, rhs_block = positives_and_block(rhs_block, p)
            xb, yb = prep(lhs_block), prep(rhs_block)
            x, y = prep(lhs), prep(rhs)
            hy = prep(self.operate(params["rhs"], rel, rhs))
            gx = prep(self.operate(params["lhs"], rel, lhs))
            if sides[0]:
                all_l = None if lhs_all[0] is None else prep(lhs_all[0])
                lhs_side = self.side(hy, cands(xb, 0), nb, x, valid, all_l, lhs_all[1])
            if sides[1]:
                all_r = None if rhs_all[0] is None else prep(rhs_all[0])
                rhs_side = self.side(gx, cands(yb, 1), nb, y, valid, all_r, rhs_all[1])
            lhs_side = with_self(lhs_side, self.comparator.pos(y, hy))  # (self_negative)
            rhs_side = with_self(rhs_side, self.comparator.pos(x, gx))
            if self.reg_fn is not None:
                penalty = (
                    self.reg_fn(x, self.complex)
                    + self.reg_fn(hy, self.complex)
                    + self.reg_fn(y, self.complex)
                    + self.reg_fn(gx, self.complex)
                    + self.op_penalty(params["rhs"], rel)
                    + self.op_penalty(params["lhs"], rel)
                )
        return lhs_side, rhs_side, jnp.where(valid, penalty, 0.0)

    def loss(
        self, lhs_side: SideScores | None, rhs_side: SideScores | None, penalty: Array, batch: Batch
    ) -> tuple[Array, dict]:
        """relation weight x edge weight x (lhs loss + rhs loss), summed, + coef x N3."""
        valid = batch.lhs >= 0
        w = jnp.where(valid, batch.weight * jnp.asarray(self.relation_weight)[batch.rel], 0.0)
        per_edge = jnp.zeros(valid.shape, jnp.float32)
        for s in (lhs_side, rhs_side):
            if s is not None:
                per_edge = per_edge + self.loss_fn(s.pos, s.neg, s.valid, self.margin)
        data_loss = jnp.sum(w * per_edge)
        reg = self.reg_coef * jnp.sum(penalty)
        stats = {"loss": data_loss, "reg": reg, "count": jnp.sum(valid.astype(jnp.float32))}
        return data_loss + reg, stats

    # ---------------------------------------------------------------- full ranking
    def groups_queries_by_relation(self, side: int) -> bool:
        """Standard mode transforms every candidate tail by the query's relation, so tail queries
        are scored one relation at a time."""
        return not self.reciprocal and side == 1

    def query_scores(
        self,
        params: dict,
        fixed: Array,  # [B, D] raw rows of the side that stays
        fixed_types: Array,  # int [B]
        rel: Array,  # int [B] (one shared value when groups_queries_by_relation)
        cands: Array,  # [N, D] raw rows of every candidate of the replaced side's type
        cand_type: Array,  # int []
        side: int,  # 0: replace the head (?, r, t); 1: replace the tail (h, r, ?)
    ) -> Array:
        """Scores of every candidate for every query: [B, N], exactly as training scores them."""
        prep = self.comparator.prepare
        fixed = self.add_global(params, fixed, fixed_types)
        cands = self.add_global(params, cands, cand_type)
        if self.reciprocal:
            f = prep(self.operate(params["rhs" if side == 0 else "lhs"], rel, fixed))
            c = prep(cands)
        elif side == 0:  # c(x', g_r(y))
            f = prep(self.operate(params["rhs"], rel, fixed))
            c = prep(cands)
        else:  # c(x, g_r(y')): candidates pass through the (shared) relation's operator
            f = prep(fixed)
            c = prep(self.operate(params["rhs"], rel[:1], cands))
        return self.comparator.neg(f[None], c[None])[0]
