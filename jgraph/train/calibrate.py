"""Partition calibration: after training, one shift vector per partition, fitted with the softmax
over every entity of the type.

PBG's softmax draws a positive's negatives from its own partition, so training never compares one
partition's scores with another's, while full ranking compares every entity. Read-out centering
(`partition.partition_shifts`) moves each partition's mean row to its type's mean; calibration
starts there and fits the shifts (P x D numbers per type, the entity rows and relation parameters
fixed) on `steps` batches of training edges, scoring each edge against every entity of the
replaced side's type, both sides. FB15k-237 with 4 partitions: README.

Shapes: N rows (every entity, types concatenated), G shifts (one per partition of every type; the
shifts of unpartitioned types stay 0), B edges per step, D dimension.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgraph.core.model import Model
from jgraph.core.scorer import float32_matmuls

BATCH = 500  # training edges per step
LR = 3e-3  # Adam


def edge_loss(model: Model, params: dict, table: Any, lo_n: tuple[int, int, int, int],
              pair: tuple[int, int], h: Any, r: Any, t: Any) -> Any:
    """Mean over B edges of one (lhs type, rhs type) pair (and one relation in standard mode) of
    the softmax loss against every entity of the replaced side's type, both sides. table [N, D];
    lo_n = (first row, count) of the lhs type, then of the rhs type; h, r, t int [B]."""
    lo_l, n_l, lo_r, n_r = lo_n
    lt, rt = pair
    total = 0.0
    for side, fixed, target, lo, n, ft, ct in ((1, lo_l + h, t, lo_r, n_r, lt, rt),
                                               (0, lo_r + t, h, lo_l, n_l, rt, lt)):
        s = model.query_scores(params, table[fixed], jnp.full(fixed.shape, ft), r, table[lo:lo + n],
                               jnp.int32(ct), side)  # [B, n]
        total = total + jnp.mean(jax.nn.logsumexp(s, axis=1) - s[jnp.arange(s.shape[0]), target])
    return total


def fit_partition_shifts(model: Model, params: dict, emb: Any, offsets: np.ndarray, counts: np.ndarray,
                         shift_of_row: np.ndarray, init: np.ndarray, trainable: np.ndarray,
                         lhs: np.ndarray, rel: np.ndarray, rhs: np.ndarray, steps: int, seed: int
                         ) -> tuple[np.ndarray, float, float]:
    """Fit the shifts. emb float32 [N, D] raw rows in id order, offsets / counts int [T] each type's
    first row and size, shift_of_row int [N] which shift a row takes, init float32 [G, D] (read-out
    centering), trainable bool [G], lhs / rel / rhs int [E] training edges (ids within their type).
    -> (shifts float32 [G, D], the loss of 4 x BATCH fixed training edges with `init` and with the
    fitted shifts)."""
    emb = jnp.asarray(emb, jnp.float32)
    rows_shift = jnp.asarray(shift_of_row)
    mask = jnp.asarray(trainable, jnp.float32)[:, None]
    rel_types = np.asarray(model.relation_types)
    # a step's edges share their types (candidates are one type's rows) and, in standard mode,
    # their relation (candidates pass through its operator)
    key = rel_types[rel] if model.reciprocal else rel[:, None]
    keys, group = np.unique(key, axis=0, return_inverse=True)
    group = group.ravel()
    pairs = [tuple(int(x) for x in (k if model.reciprocal else rel_types[k[0]])) for k in keys]
    members = [np.flatnonzero(group == g) for g in range(len(keys))]
    sizes = np.array([m.size for m in members], np.float64)
    opt = optax.adam(LR)
    steps_of: dict[tuple[int, int], Any] = {}  # one compiled step per (lhs type, rhs type)
    losses_of: dict[tuple[int, int], Any] = {}

    def lo_n(pair):
        lt, rt = pair
        return int(offsets[lt]), int(counts[lt]), int(offsets[rt]), int(counts[rt])

    def loss(shifts, table, pair, h, r, t):  # the table is an argument, not a compiled-in constant
        return edge_loss(model, params, table + (shifts * mask)[rows_shift], lo_n(pair), pair, h, r, t)

    def step_for(pair):
        if pair not in steps_of:
            @jax.jit
            @float32_matmuls
            def step(shifts, state, table, h, r, t):
                value, grad = jax.value_and_grad(loss)(shifts, table, pair, h, r, t)
                updates, state = opt.update(grad, state, shifts)
                return optax.apply_updates(shifts, updates), state, value
            steps_of[pair] = step
        return steps_of[pair]

    rng = np.random.default_rng(seed)
    probe = rng.integers(0, lhs.size, 4 * BATCH)  # fixed edges for the loss before and after

    def probe_loss(shifts) -> float:
        total = 0.0
        for g in np.unique(group[probe]):
            idx = probe[group[probe] == g]
            if pairs[g] not in losses_of:
                losses_of[pairs[g]] = jax.jit(float32_matmuls(partial(loss, pair=pairs[g])))
            total += float(losses_of[pairs[g]](shifts, emb, h=jnp.asarray(lhs[idx]),
                                               r=jnp.asarray(rel[idx]), t=jnp.asarray(rhs[idx]))) * idx.size
        return total / probe.size

    shifts = jnp.asarray(init, jnp.float32)
    before = probe_loss(shifts)
    state = opt.init(shifts)
    for _ in range(steps):
        g = int(rng.choice(len(keys), p=sizes / sizes.sum()))
        idx = members[g][rng.integers(0, members[g].size, BATCH)]
        shifts, state, _ = step_for(pairs[g])(shifts, state, emb, jnp.asarray(lhs[idx]),
                                              jnp.asarray(rel[idx]), jnp.asarray(rhs[idx]))
    return np.asarray(shifts * mask, np.float32), before, probe_loss(shifts)
