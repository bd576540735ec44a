"""Learning-rate schedules (optimizer.schedule, warmup_steps, decay_steps, final_lr_ratio): the
factor against its closed form, and the jitted step scaling both optimizers' updates by it.

Row-wise and element-wise Adagrad updates are linear in the rate, so a step at factor f moves
every row and relation parameter by exactly f times what the constant schedule moves it.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_of

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.core.model import Batch, Layout
from jgraph.core.optim import Schedule, lr_factor
from jgraph.core.step import NegativeSpec, Tables, init_state, make_train_block

# (schedule, {step: factor}) worked out by hand: warm-up w = 2 -> (step + 1) / 2 before step 2;
# decay over steps [2, 10), p = (step - 2) / 8, final ratio 0.1
CASES = [
    (Schedule("constant"), {0: 1.0, 5: 1.0, 10**6: 1.0}),
    (Schedule("constant", warmup_steps=4), {0: 0.25, 1: 0.5, 3: 1.0, 100: 1.0}),
    (Schedule("linear", 2, 10, 0.1), {0: 0.5, 1: 1.0, 2: 1.0, 4: 1 - 0.9 * 0.25, 6: 0.55, 10: 0.1,
                                      50: 0.1}),
    (Schedule("cosine", 2, 10, 0.1), {0: 0.5, 2: 1.0, 4: 0.1 + 0.45 * (1 + math.cos(math.pi / 4)),
                                      6: 0.55, 8: 0.1 + 0.45 * (1 + math.cos(3 * math.pi / 4)),
                                      10: 0.1, 11: 0.1}),
    (Schedule("cosine", 0, 4, 0.0), {0: 1.0, 2: 0.5, 4: 0.0}),
]


@pytest.mark.parametrize("schedule, want", CASES, ids=lambda c: str(c) if isinstance(c, Schedule) else "")
def test_lr_factor_closed_form(schedule, want):
    for step, factor in want.items():
        got = float(lr_factor(schedule, jnp.int32(step)))
        assert got == pytest.approx(factor, rel=1e-6, abs=1e-7), (schedule, step)


def test_unknown_schedule_is_an_error():
    with pytest.raises(ValueError, match="constant, linear or cosine"):
        lr_factor(Schedule("exponential", 0, 10), jnp.int32(3))


K, D = 8, 4
BLOCK = Batch(  # one batch [S=1, C=2, P=2], standard mode, relation 0 in chunk 0, 1 in chunk 1
    lhs=np.array([[[0, 1], [2, 3]]], np.int32), rhs=np.array([[[4, 5], [6, 1]]], np.int32),
    rel=np.array([[[0, 0], [1, 1]]], np.int32), weight=np.ones((1, 2, 2), np.float32))
LAYOUT = Layout(jnp.zeros((1, 2), jnp.int32), jnp.full((1, 2), K, jnp.int32))


def _one_batch(schedule: Schedule | None, step: int, mode: str):
    """Rows and relation parameters after one batch at `step`, from the same start."""
    model = model_of(dimension=D, operator_of_relation=["diagonal"] * 2, relation_types=np.zeros((2, 2)),
                     loss="softmax")
    all_negs = mode == "all_negs"
    neg = NegativeSpec(num_uniform=0 if all_negs else 2, use_batch=True, all_negs=all_negs,
                       sides=(True, True))
    block = make_train_block(model, neg, 0.1, 0.05, 1e-10, K, schedule=schedule,
                             row_update="dense" if all_negs else mode)
    state = init_state(model, seed=1, rng_impl="threefry", relation_lr=0.05, eps=1e-10)
    state = state._replace(step=jnp.int32(step))
    rng = np.random.default_rng(0)
    emb = np.vstack([rng.standard_normal((K, D)), np.zeros((1, D))]).astype(np.float32)
    acc = np.append(rng.uniform(0.1, 0.5, K), 0.0).astype(np.float32)
    tables = Tables(jnp.asarray(emb), jnp.asarray(acc), jnp.zeros((K + 1,), jnp.int32))
    params0 = jax.tree_util.tree_map(np.asarray, state.params)
    new_state, tables, _ = block(state, tables, Batch(*map(jnp.asarray, BLOCK)), jnp.int32(1), LAYOUT)
    moved = np.asarray(tables.emb)[:K] - emb[:K]
    dparams = jax.tree_util.tree_map(lambda a, b: np.asarray(a) - b, new_state.params, params0)
    return moved, dparams


@pytest.mark.parametrize("mode", ["sparse", "dense", "all_negs"])
def test_step_scales_both_updates_by_the_factor(mode):
    """At step 6 of Schedule(linear, 2, 10, 0.1) (factor 0.55), rows and relation parameters move by
    0.55 times the constant schedule's move at the same step (the same negatives); at step 0 of a
    4-step warm-up by 0.25."""
    for schedule, step, f in ((Schedule("linear", 2, 10, 0.1), 6, 0.55),
                              (Schedule("constant", 4), 0, 0.25)):
        base_rows, base_params = _one_batch(None, step, mode)
        assert np.abs(base_rows).max() > 1e-3
        rows, params = _one_batch(schedule, step, mode)
        np.testing.assert_allclose(rows, f * base_rows, rtol=1e-4, atol=1e-7)
        for got, want in zip(jax.tree_util.tree_leaves(params), jax.tree_util.tree_leaves(base_params),
                             strict=True):
            assert np.abs(want).max() > 1e-4
            np.testing.assert_allclose(got, f * want, rtol=1e-4, atol=1e-7)
