"""The jitted training steps (the ranking steps are in jgraph/core/ranks.py).

A training call runs up to S batches inside one
dispatch (`lax.fori_loop` with a dynamic trip count, so a short last block costs nothing extra),
donates the state and the working table, and touches only the rows a batch gathers:
ids -> gathered rows -> value_and_grad w.r.t. those rows and the relation parameters ->
gradients summed per distinct row (at one representative occurrence, `optim.claim_rows`) ->
row-wise Adagrad on the distinct rows -> scatter back. A batch that gathers at least as many ids
as the table has rows sums its gradients into a table-sized buffer and updates the touched rows
in one pass over the table instead (training.row_update, `use_dense_update`).

Shapes: S batches per block, C chunks, P positives per chunk, U uniform negatives, K rows in the
working table, D dimension, B queries.
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgraph.core.features import combine_pieces, expand_pieces
from jgraph.core.frozen import freeze_gradients, trainable
from jgraph.core.hashrng import batch_seed, derive
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.negatives import (
    degree_rows,
    log_expected_counts,
    not_self_mask,
    region_mask,
    uniform_rows,
    uniform_rows_of_two,
)
from jgraph.core.optim import (
    Schedule,
    claim_rows,
    decode_rows,
    encode_rows,
    lr_factor,
    relation_optimizer,
    row_adagrad,
    sparse_row_adagrad,
)
from jgraph.core.scorer import float32_matmuls, negatives_in

Array = Any


class TrainState(NamedTuple):
    step: Array  # int32 [] batches trained so far (RNG is folded with it)
    key: Array  # PRNG key
    params: dict  # relation parameters (see Model.init_params)
    opt_state: Any  # optax state of the relation parameters


class Tables(NamedTuple):
    """The working table: the resident partitions' rows and their row-Adagrad accumulators, plus
    one scratch row at the end (index K) that duplicate occurrences write to."""

    emb: Array  # float32 [K + 1, D] (or uint16 bfloat16 bits, see optim.table_dtype)
    acc: Array  # float32 [K + 1]
    owner: Array  # int32 [K + 1]: scratch of optim.claim_rows (contents never matter)


def new_tables(num_rows: int, dim: int, dtype: Any) -> Tables:
    """An all-zero working table of `num_rows` rows (plus the scratch row)."""
    return Tables(jnp.zeros((num_rows + 1, dim), dtype), jnp.zeros((num_rows + 1,), jnp.float32),
                  jnp.zeros((num_rows + 1,), jnp.int32))


STAT_KEYS = ("loss", "reg", "count", "nonfinite")


class NegativeSpec(NamedTuple):
    num_uniform: int
    use_batch: bool
    all_negs: bool
    sides: tuple[bool, bool]  # (lhs negatives on, rhs negatives on)
    both_partitions: bool = False  # negatives.uniform_from=bucket (uniform draws; all_negs keeps
    #                                the side's partition)
    self_negative: bool = False  # negatives.self_negative: the query's own entity as one more
    #                              negative (Model.score_blocks; all_negs has it among its rows)
    num_degree: int = 0  # of the num_uniform rows, this many drawn in proportion to degree from
    #                      the side's partition (negatives.degree_fraction; needs layout.deg)
    self_weight: float = 1.0  # all_negs: the query's own entity counts as this many negatives
    #                           (its score raised by log(self_weight); negatives.self_weight)
    self_warmup: int = 0  # ... with log(self_weight) ramped up linearly over this many batches
    logq: bool = False  # negatives.logq_correction: sampled negatives' scores lowered by the log of
    #                     their expected count (`sampling_log_counts`; needs layout.deg)


def init_state(model: Model, seed: int, rng_impl: str, relation_lr: float, eps: float) -> TrainState:
    params = model.init_params()
    opt = relation_optimizer(relation_lr, eps)
    key = jax.random.key(seed, impl={"threefry": "threefry2x32"}.get(rng_impl, rng_impl))
    return TrainState(jnp.zeros((), jnp.int32), key, params, opt.init(params))


def _chunk_regions(model: Model, batch: Batch, layout: Layout, other: bool = False
                   ) -> tuple[Array, ...]:
    """Per chunk: (lhs lo, lhs n, rhs lo, rhs n) of the partitions negatives come from. [C] each.

    other: instead, the partitions of each side's type on the opposite side of the bucket (the
    second region of negatives.uniform_from=bucket)."""
    types = jnp.asarray(model.relation_types)[batch.rel[:, 0]]  # [C, 2]
    s_l, s_r = (1, 0) if other else (0, 1)
    return (
        layout.lo[types[:, 0], s_l],
        layout.n[types[:, 0], s_l],
        layout.lo[types[:, 1], s_r],
        layout.n[types[:, 1], s_r],
    )


def batch_scores(
    model: Model, neg: NegativeSpec, params: dict, rows: Array, batch: Batch, layout: Layout,
    num_rows: int, step: Array | None = None,
):
    """Scores of one batch (or a group of its chunks).

    Sparse: `rows` = (lhs block [C, P + U, D], rhs block [C, P + U, D]), the rows of each chunk's
    ids as `gather_ids` lays them out (`side_blocks` splits them): a side's positives, then its
    uniform negatives (U = 0 on a side without negatives).
    Dense (all_negs): `rows` is the whole working table [K, D]."""
    if not neg.all_negs:
        u_l, u_r = _uniform_per_side(neg)
        return model.score_blocks(params, rows[0], rows[1], batch, (u_l, u_r),
                                  neg.use_batch, neg.sides, self_negative=neg.self_negative)
    lo_l, n_l, lo_r, n_r = _chunk_regions(model, batch, layout)
    lhs_ids, rhs_ids = _ids(batch, lo_l, lo_r)
    extra_l = extra_r = v_l = v_r = None
    if neg.sides[0]:
        extra_l = rows
        v_l = region_mask(lo_l, n_l, num_rows) & not_self_mask(lhs_ids, num_rows)
    if neg.sides[1]:
        extra_r = rows
        v_r = region_mask(lo_r, n_r, num_rows) & not_self_mask(rhs_ids, num_rows)
    lhs_side, rhs_side, pen = model.score(params, rows[lhs_ids], rows[rhs_ids], batch, extra_l,
                                          extra_r, v_l, v_r, False, neg.sides)
    if neg.self_weight != 1.0:  # a head's own tail (a tail's own head) weighs self_weight negatives
        up = np.log(neg.self_weight)  # ramped over the first self_warmup batches (`step`: batches done)
        if neg.self_warmup and step is not None:
            up = up * jnp.clip(step.astype(jnp.float32) / neg.self_warmup, 0.0, 1.0)
        lhs_side, rhs_side = (None if s is None else s._replace(
            neg=s.neg + up * (own[..., None] == jnp.arange(num_rows)))
            for s, own in ((lhs_side, rhs_ids), (rhs_side, lhs_ids)))
    return lhs_side, rhs_side, pen


def compute_slices(num_chunks: int, groups: int) -> list[slice]:
    """A batch's C chunks as `groups` equal slices (one slice when they do not divide C)."""
    groups = groups if groups > 0 and num_chunks % groups == 0 else 1
    g = num_chunks // groups
    return [slice(h * g, (h + 1) * g) for h in range(groups)]


def batch_loss(model: Model, neg: NegativeSpec, params: dict, rows: Any, batch: Batch,
               layout: Layout, num_rows: int, groups: int, log_counts: tuple | None = None,
               step: Array | None = None) -> tuple[Array, dict]:
    """Loss of a batch, computed as `groups` independent groups of chunks (`compute_slices`);
    negatives scored in model.compute_dtype (`scorer.negatives_in`).

    Chunks never interact, so the split changes no number; it gives XLA's CPU runtime independent
    subgraphs to run on different cores (small batched matmuls do not parallelise well inside
    one op). rows: sparse, one (lhs block, rhs block) pair per group (see `batch_scores`);
    dense, the working table. log_counts: `sampling_log_counts` of the batch (log-Q), or None.
    step: the batches trained before this one (negatives.self_weight's warm-up), or None."""
    total, stats = 0.0, None
    for h, sl in enumerate(compute_slices(batch.lhs.shape[0], groups)):
        sub = Batch(*(a[sl] for a in batch))
        with negatives_in(model.compute_dtype):
            sides = batch_scores(model, neg, params, rows if neg.all_negs else rows[h], sub,
                                 layout, num_rows, step)
        if log_counts is not None:
            sides = (*(_lowered(s, o[sl]) for s, o in zip(sides[:2], log_counts, strict=True)),
                     sides[2])
        loss, st = model.loss(*sides, sub)
        total = total + loss
        stats = st if stats is None else {k: stats[k] + st[k] for k in st}
    return total, stats


def sampling_log_counts(model: Model, neg: NegativeSpec, ids: tuple[Array, Array], batch: Batch,
                        layout: Layout) -> tuple[Array, Array]:
    """negatives.logq_correction: per side, the log of each sampled negative column's expected
    count among its chunk's negatives (`negatives.log_expected_counts`): float32 [C, N_side], the
    columns `Model.score_blocks` scores (batch negatives, then uniform ones). ids: `side_blocks`."""
    lo_l, n_l, lo_r, n_r = _chunk_regions(model, batch, layout)
    other = _chunk_regions(model, batch, layout, other=True) if neg.both_partitions else None
    p = batch.lhs.shape[1]
    nb = (jnp.sum(batch.lhs >= 0, axis=1) - 1).clip(0) if neg.use_batch else jnp.zeros(
        batch.lhs.shape[:1], jnp.int32)
    out = []
    for side, (lo, n) in enumerate(((lo_l, n_l), (lo_r, n_r))):
        u = _uniform_per_side(neg)[side]
        out.append(log_expected_counts(
            ids[side][:, (0 if neg.use_batch else p) : p + u], lo, n, layout.deg,
            nb.astype(jnp.float32), u, min(neg.num_degree, u),
            None if other is None else (other[2 * side], other[2 * side + 1])))
    return out[0], out[1]


def _lowered(s: Any, log_count: Array) -> Any:
    """SideScores with its first N negative columns lowered by log_count [C, N] (a column after
    them, the self-negative, is no draw and stays)."""
    if s is None:
        return None
    pad = s.neg.shape[-1] - log_count.shape[-1]
    return s._replace(neg=s.neg - jnp.pad(log_count, ((0, 0), (0, pad)))[:, None, :])


def _ids(batch: Batch, lo_l: Array, lo_r: Array) -> tuple[Array, Array]:
    """Padding (-1) replaced by a real row of the right partition, so gathers stay in range."""
    valid = batch.lhs >= 0
    return jnp.where(valid, batch.lhs, lo_l[:, None]), jnp.where(valid, batch.rhs, lo_r[:, None])


def gather_ids(model: Model, neg: NegativeSpec, batch: Batch, layout: Layout, seed: Array) -> Array:
    """Every row id a batch touches, per chunk: int [C, W] = lhs P, uniform lhs U, rhs P, uniform
    rhs U (uniform only for the sides that have negatives): each side's candidates contiguous.
    seed: uint32 [] (hashrng.batch_seed) of the uniform draws."""
    lo_l, n_l, lo_r, n_r = _chunk_regions(model, batch, layout)
    lhs_ids, rhs_ids = _ids(batch, lo_l, lo_r)
    k_l, k_r = derive(seed, 0), derive(seed, 1)
    u = neg.num_uniform if not neg.all_negs else 0
    other = _chunk_regions(model, batch, layout, other=True) if neg.both_partitions else None

    def draw(k: Array, lo: Array, n: Array, side: int) -> Array:
        nd = min(neg.num_degree, u)
        if other is None:
            rows = uniform_rows(k, lo, n, u - nd)
        else:
            rows = uniform_rows_of_two(k, lo, n, other[2 * side], other[2 * side + 1], u - nd)
        if not nd:
            return rows
        return jnp.concatenate([rows, degree_rows(derive(k, 3), lo, n, layout.deg, nd)], axis=1)

    parts = [lhs_ids]
    if u and neg.sides[0]:
        parts.append(draw(k_l, lo_l, n_l, 0))
    parts.append(rhs_ids)
    if u and neg.sides[1]:
        parts.append(draw(k_r, lo_r, n_r, 1))
    return jnp.concatenate(parts, axis=1)


def _uniform_per_side(neg: NegativeSpec) -> tuple[int, int]:
    """Uniform negatives gathered per chunk on each side (0 on a side without negatives)."""
    return tuple(neg.num_uniform if neg.num_uniform and not neg.all_negs and on else 0
                 for on in neg.sides)


def side_blocks(neg: NegativeSpec, ids: Array) -> tuple[Array, Array]:
    """`gather_ids`' [C, W] split into (lhs block [C, P + U], rhs block [C, P + U])."""
    p = (ids.shape[1] - sum(_uniform_per_side(neg))) // 2
    w_l = p + _uniform_per_side(neg)[0]
    return ids[:, :w_l], ids[:, w_l:]


def use_dense_update(row_update: str, gathered: int, num_rows: int) -> bool:
    """training.row_update for a batch that gathers `gathered` row ids (M, repeats counted) from
    a working table of `num_rows` (K): dense where asked, or (auto) where M >= K; a sparse
    update's passes over M rows (two of them scattered) then cost more than dense passes over K."""
    return row_update == "dense" or (row_update == "auto" and gathered >= num_rows)


def make_train_block(model: Model, neg: NegativeSpec, lr: float, relation_lr: float, eps: float,
                     num_rows: int, groups: int = 1, row_update: str = "auto",
                     schedule: Schedule | None = None):
    """fn(state, tables, block: Batch [S, C, P], num_batches, layout) -> (state, tables, stats).

    Runs `num_batches` (<= S) batches of the block; state and tables (K = num_rows real rows plus
    the scratch row) are donated. row_update: see `use_dense_update` (all_negs: always dense).
    schedule: both rates multiplied by `optim.lr_factor(schedule, state.step)` (None: constant).
    stats: {"loss", "reg", "count", "nonfinite"} float32 sums over the block.
    """
    opt = relation_optimizer(relation_lr, eps)
    scheduled = schedule is not None and not schedule.constant

    def table_adagrad(tables: Tables, rows: Array, g_rows: Array, ok: Array, seed: Array, lr: Array,
                      touched: Array | None = None) -> Tables:
        """Row-wise Adagrad over the whole working table: rows [K, D] as the batch used them,
        g_rows [K, D] each row's summed gradient; only `touched` rows (bool [K]; None: all)
        change, and nothing does after a non-finite batch (ok False)."""
        old_acc = tables.acc[:num_rows]
        new_emb, acc = row_adagrad(rows, old_acc, g_rows, lr, eps)
        new_emb = encode_rows(new_emb, tables.emb.dtype, derive(seed, 2))
        write = ok if touched is None else ok & touched
        return tables._replace(
            emb=tables.emb.at[:num_rows].set(jnp.where(write[..., None], new_emb, tables.emb[:num_rows])),
            acc=tables.acc.at[:num_rows].set(jnp.where(write, acc, old_acc)))

    def one_batch(state: TrainState, tables: Tables, batch: Batch, layout: Layout):
        seed = batch_seed(state.key, state.step)
        factor = lr_factor(schedule, state.step) if scheduled else None
        lr_now = lr if factor is None else lr * factor
        if neg.all_negs:
            rows = model.renorm(decode_rows(tables.emb[:num_rows]))

            def f(rows, params):
                return batch_loss(model, neg, params, rows, batch, layout, num_rows, groups,
                                  step=state.step)

            (total, stats), (g_rows, g_params) = jax.value_and_grad(f, (0, 1), has_aux=True)(
                rows, state.params
            )
            ok = jnp.isfinite(total)
            tables = table_adagrad(tables, rows, g_rows, ok, seed, lr_now,
                                   trainable(model.spec, layout, jnp.arange(num_rows)))
        else:
            # every (chunk group, side) block gathered and differentiated on its own: from one
            # [C, W, D] array XLA assembled the gradient in one slow loop over a select per
            # source (12% of a d=100 step); per block it is a dot output updated in place
            ids = side_blocks(neg, gather_ids(model, neg, batch, layout, seed))
            log_counts = sampling_log_counts(model, neg, ids, batch, layout) if neg.logq else None
            pieces = [tuple(i[sl] for i in ids) for sl in compute_slices(ids[0].shape[0], groups)]
            pieces, mix = expand_pieces(model.spec, layout, pieces, num_rows)  # featurized types
            flat = jnp.concatenate([i.ravel() for pair in pieces for i in pair])  # [M]
            dense = use_dense_update(row_update, flat.shape[0], num_rows)
            blocks = jax.tree_util.tree_map(
                lambda i: model.renorm(decode_rows(tables.emb.at[i].get(mode="promise_in_bounds"))),
                pieces)

            def f(blocks, params):
                blocks = combine_pieces(model.spec, params, blocks, mix)  # featurized types
                return batch_loss(model, neg, params, blocks, batch, layout, num_rows, groups,
                                  log_counts)

            (total, stats), (g_blocks, g_params) = jax.value_and_grad(f, (0, 1), has_aux=True)(
                blocks, state.params
            )
            d = jax.tree_util.tree_leaves(blocks)[0].shape[-1]
            ok = jnp.isfinite(total)
            if dense:
                # every occurrence's gradient added into a table-sized buffer, then Adagrad over
                # the table's rows (the touched ones change)
                mode = "promise_in_bounds" if mix is None else "drop"  # feature padding: row K
                g_rows = jnp.zeros((num_rows, d), jnp.float32)
                for i, g in zip(jax.tree_util.tree_leaves(pieces), jax.tree_util.tree_leaves(g_blocks),
                                strict=True):
                    g_rows = g_rows.at[i.ravel()].add(g.reshape(-1, d), mode=mode)
                touched = jnp.zeros((num_rows,), bool).at[flat].set(True, mode=mode)
                touched = trainable(model.spec, layout, jnp.arange(num_rows), touched)
                rows = model.renorm(decode_rows(tables.emb[:num_rows]))
                tables = table_adagrad(tables, rows, g_rows, ok, seed, lr_now, touched)
            else:
                owner, rep = claim_rows(tables.owner, flat)
                rows = jnp.concatenate([b.reshape(-1, d) for b in jax.tree_util.tree_leaves(blocks)])
                # each row's gradient summed over its occurrences, at its representative (one
                # scatter-add per block, no concatenated copy); a non-finite batch updates nothing
                # (the host stops the run on seeing the count)
                g_rows, at = jnp.zeros_like(rows), 0  # [M, D]
                for g in jax.tree_util.tree_leaves(g_blocks):
                    g = g.reshape(-1, d)
                    g_rows = g_rows.at[rep[at : at + g.shape[0]]].add(g, mode="promise_in_bounds")
                    at += g.shape[0]
                g_rows = jnp.where(ok, g_rows, 0.0)
                first = rep == jnp.arange(flat.shape[0], dtype=jnp.int32)
                first = trainable(model.spec, layout, flat, first)  # frozen rows: to scratch row
                target = jnp.where(first, flat, num_rows)  # other occurrences: the scratch row
                emb, acc = sparse_row_adagrad(tables.emb, tables.acc, target, rows, g_rows, lr_now,
                                              eps, derive(seed, 2))
                tables = Tables(emb, acc, owner)
        g_params = jax.tree_util.tree_map(lambda g: jnp.where(ok, g, 0.0), g_params)
        g_params = freeze_gradients(model.spec, g_params)
        updates, opt_state = opt.update(g_params, state.opt_state, state.params)
        if factor is not None:  # Adagrad's update is linear in its rate
            updates = jax.tree_util.tree_map(lambda u: u * factor, updates)
        params = optax.apply_updates(state.params, updates)
        stats = {
            "loss": jnp.where(ok, stats["loss"], 0.0),
            "reg": jnp.where(ok, stats["reg"], 0.0),
            "count": stats["count"],
            "nonfinite": (~ok).astype(jnp.float32),
        }
        return TrainState(state.step + 1, state.key, params, opt_state), tables, stats

    @partial(jax.jit, donate_argnums=(0, 1))
    @float32_matmuls
    def train_block(state: TrainState, tables: Tables, block: Batch, num_batches: Array,
                    layout: Layout):
        def body(i, carry):
            state, tables, acc = carry
            batch = jax.tree_util.tree_map(lambda a: jax.lax.dynamic_index_in_dim(a, i, 0, False), block)
            state, tables, stats = one_batch(state, tables, batch, layout)
            return state, tables, {k: acc[k] + stats[k] for k in STAT_KEYS}

        zero = {k: jnp.zeros((), jnp.float32) for k in STAT_KEYS}
        return jax.lax.fori_loop(0, num_batches, body, (state, tables, zero))

    return train_block


def make_slot_ops(init_scale: float):
    """Jitted working-table edits (table donated): load rows into a slot, or initialise a slot.

    put(tables, start, emb [M, D], acc [M]) -> tables; init(tables, start, key, offset, rows=M) -> tables
    (rows drawn with `key` folded with `offset`, the rows' place in their partition);
    get(tables, start, rows=M, out=None) -> host copies (emb [M, D] float32 or bfloat16, into `out`
    if given; acc [M]).
    One compile per slot capacity M. Hand `put` 64-byte aligned host arrays (memory.aligned_empty,
    as storage reads return them): the CPU client then aliases them instead of copying.
    """

    def _put(tables: Tables, start: Array, emb: Array, acc: Array) -> Tables:
        return tables._replace(
            emb=jax.lax.dynamic_update_slice_in_dim(tables.emb, encode_rows(emb, tables.emb.dtype),
                                                    start, 0),
            acc=jax.lax.dynamic_update_slice_in_dim(tables.acc, acc, start, 0),
        )

    put = jax.jit(_put, donate_argnums=(0,))

    @partial(jax.jit, donate_argnums=(0,), static_argnames=("rows",))
    def init(tables: Tables, start: Array, key: Array, offset: Array, rows: int) -> Tables:
        # the key is folded here: an eager fold_in per call waited for the calls queued before it
        # (1.0 s of a 1M-row slot's 1.4 s)
        key = jax.random.fold_in(key, offset)
        emb = init_scale * jax.random.normal(key, (rows, tables.emb.shape[1]), jnp.float32)
        return _put(tables, start, emb, jnp.zeros((rows,), jnp.float32))

    @partial(jax.jit, static_argnames=("rows",))
    def get_on_device(tables: Tables, start: Array, rows: int) -> tuple[Array, Array]:
        emb = jax.lax.dynamic_slice_in_dim(tables.emb, start, rows, 0)
        if emb.dtype == jnp.uint16:  # bfloat16 bits: stored as bfloat16
            emb = jax.lax.bitcast_convert_type(emb, jnp.bfloat16)
        return (emb,
                jax.lax.dynamic_slice_in_dim(tables.acc, start, rows, 0))

    def get(tables: Tables, start: int, rows: int, out: np.ndarray | None = None
            ) -> tuple[np.ndarray, np.ndarray]:
        if all(d.platform == "cpu" for d in tables.emb.devices()):
            # the table is host memory: copy the rows out of a zero-copy view (a memcpy, a third
            # of the jitted slice's time), before the table is donated again
            emb = np.asarray(tables.emb)[start : start + rows]
            if emb.dtype == np.uint16:
                emb = emb.view(jnp.bfloat16)
            acc = np.asarray(tables.acc)[start : start + rows].copy()
        else:
            emb, acc = (np.asarray(a) for a in get_on_device(tables, jnp.int32(start), rows=rows))
        if out is None:
            return np.array(emb), acc
        np.copyto(out, emb)
        return out, acc

    return put, init, get
