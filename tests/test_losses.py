"""Losses and the N3 regularizer against golden numbers worked out by hand (pbg-reference §3.4-3.5).

Loss.fn(pos [...], neg [..., N], valid [..., N], margin) -> per-positive loss [...]; masked
negatives (a positive against itself, padding) must not contribute, neither to the value nor to the
gradient. Model.loss = sum over edges of relation weight x edge weight x (lhs loss + rhs loss),
padding excluded, + coef x sum of the N3 penalty.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_of

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.core.model import Batch, Model, ModelSpec, SideScores
from jgraph.core.scorer import LOSSES, REGULARIZERS, adversarial_weights, loss_function

LN2, LN3 = math.log(2.0), math.log(3.0)

# (pos [2], neg [2, 3], valid [2, 3], margin, expected [2]) per loss
GOLDEN = {
    "ranking": (
        [1.0, 0.0],
        [[0.5, 1.2, 3.0], [-0.2, 0.05, 7.0]],
        [[True, True, False], [True, True, False]],
        0.1,
        # row 0: max(0, .1 - 1 + .5) = 0, max(0, .1 - 1 + 1.2) = .3, masked 3.0 -> 0   => 0.3
        # row 1: max(0, .1 - 0 - .2) = 0, max(0, .1 - 0 + .05) = .15, masked 7.0 -> 0 => 0.15
        [0.3, 0.15],
    ),
    "logistic": (
        [-LN3, 0.0],
        [[0.0, LN3, 50.0], [LN3, math.log(7.0), -2.0]],
        [[True, True, False], [True, True, True]],
        0.1,
        # softplus(t) = ln(1 + e^t); N = 3 negative columns (masked ones included, as PBG)
        # row 0: softplus(ln3) = ln4; negs ln2 + ln4 (50.0 masked) = 3 ln2, / 3 = ln2
        #        => ln4 + ln2 = 3 ln2
        # row 1: softplus(0) = ln2; negs ln4 + ln8 + ln(1 + e^-2) = 5 ln2 + ln(1 + e^-2), / 3
        [3 * LN2, LN2 + (5 * LN2 + math.log(1 + math.exp(-2.0))) / 3],
    ),
    "softmax": (
        [0.0, LN2],
        [[LN2, 0.0, 100.0], [LN3, math.log(4.0), 100.0]],
        [[True, True, False], [True, True, False]],
        0.1,
        # -s + ln(e^s + sum_valid e^t)
        # row 0: -0 + ln(1 + 2 + 1) = ln4
        # row 1: -ln2 + ln(2 + 3 + 4) = ln(9 / 2)
        [math.log(4.0), math.log(4.5)],
    ),
    "logsigmoid": (
        [math.log(1.5), -LN2],
        [[-LN2, math.log(1.5), 50.0], [0.0, math.log(3.5), -LN2]],
        [[True, True, False], [True, True, True]],
        LN2,  # gamma
        # softplus(-(gamma + s)) + mean over valid negatives of softplus(gamma + t)
        # row 0: softplus(-ln3) = ln(4/3); negs softplus(0) = ln2, softplus(ln3) = ln4 -> 3/2 ln2
        # row 1: softplus(0) = ln2; negs softplus(ln2) = ln3, softplus(ln7) = ln8, softplus(0) = ln2
        [math.log(4 / 3) + 1.5 * LN2, LN2 + (LN3 + 4 * LN2) / 3],
    ),
}


def _args(name):
    pos, neg, valid, margin, expected = GOLDEN[name]
    return (jnp.asarray(pos, jnp.float32), jnp.asarray(neg, jnp.float32), jnp.asarray(valid),
            margin, np.asarray(expected))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_loss_golden_values(name):
    pos, neg, valid, margin, expected = _args(name)
    got = LOSSES.get(name).fn(pos, neg, valid, margin)
    assert got.shape == (2,)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_masked_negatives_do_not_contribute(name):
    """Changing masked scores (to huge values either way) changes neither loss nor gradient, and the
    gradient with respect to a masked score is exactly zero."""
    pos, neg, valid, margin, expected = _args(name)
    fn = LOSSES.get(name).fn
    grad = jax.jit(jax.grad(lambda p, n: jnp.sum(fn(p, n, valid, margin)), argnums=(0, 1)))
    g_pos, g_neg = grad(pos, neg)
    for wild in (1e4, -1e4):
        other = jnp.where(valid, neg, wild)
        np.testing.assert_allclose(np.asarray(fn(pos, other, valid, margin)), expected, rtol=1e-5, atol=1e-6)
        g_pos2, g_neg2 = grad(pos, other)
        np.testing.assert_allclose(np.asarray(g_pos2), np.asarray(g_pos), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(np.asarray(g_neg2), np.asarray(g_neg), rtol=1e-6, atol=1e-7)
    assert np.all(np.asarray(g_neg)[~np.asarray(valid)] == 0.0)
    assert np.all(np.isfinite(np.asarray(g_neg)))


@pytest.mark.parametrize("name", sorted(GOLDEN))
def test_all_negatives_masked(name):
    """A positive whose negatives are all masked: ranking and softmax give 0, logistic keeps its
    positive term softplus(-s) (PBG's BCE with logits), logsigmoid softplus(-(gamma + s))."""
    pos = jnp.asarray([0.7, -1.3], jnp.float32)
    neg = jnp.asarray([[5.0, -5.0], [0.0, 2.0]], jnp.float32)
    valid = jnp.zeros((2, 2), bool)
    got = np.asarray(LOSSES.get(name).fn(pos, neg, valid, 0.1))
    shift = {"logistic": 0.0, "logsigmoid": 0.1}  # the positive's term stays; logsigmoid: + gamma
    p64 = np.asarray(pos, np.float64)
    expected = np.log1p(np.exp(-(p64 + shift[name]))) if name in shift else np.zeros(2)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", ["ranking", "softmax"])
def test_no_negative_columns_is_zero_loss(name):
    """PBG: no negatives -> zero loss for ranking and softmax."""
    got = LOSSES.get(name).fn(jnp.asarray([0.3, -1.0]), jnp.zeros((2, 0)), jnp.zeros((2, 0), bool), 0.1)
    np.testing.assert_array_equal(np.asarray(got), np.zeros(2))


def test_n3_real():
    """sum |x|^3: [1, -2, 0.5] -> 1 + 8 + 0.125 = 9.125; [0, 0, -3] -> 27."""
    x = jnp.asarray([[1.0, -2.0, 0.5], [0.0, 0.0, -3.0]], jnp.float32)
    got = REGULARIZERS.get("n3").fn(x, False)
    np.testing.assert_allclose(np.asarray(got), [9.125, 27.0], rtol=1e-6)


def test_n3_complex_modulus():
    """Complex: (real half, imaginary half) pairs, sum |z|^3.
    [3, 0 | 4, 1] -> z = (3+4i, 0+1i) -> 5^3 + 1^3 = 126 (the real variant would give 27+64+1 = 92);
    [1, 1 | 1, -1] -> |1+1i|^3 + |1-1i|^3 = 2 * 2^1.5."""
    x = jnp.asarray([[3.0, 0.0, 4.0, 1.0], [1.0, 1.0, 1.0, -1.0]], jnp.float32)
    got = REGULARIZERS.get("n3").fn(x, True)
    np.testing.assert_allclose(np.asarray(got), [126.0, 2 * 2**1.5], rtol=1e-6)


@pytest.mark.parametrize("complex_", [False, True])
def test_n3_gradient_finite_at_zero(complex_):
    """d/dx |x|^3 = 3 x |x| is 0 at 0 (no NaN from the modulus' square root)."""
    grad = jax.jit(jax.grad(lambda x: jnp.sum(REGULARIZERS.get("n3").fn(x, complex_))))
    g = grad(jnp.zeros((1, 4)))
    np.testing.assert_array_equal(np.asarray(g), np.zeros((1, 4)))
    # and away from zero: d/dx_i = 3 x_i |x_i| (real) or 3 x_i |z| (complex)
    x = jnp.asarray([[3.0, 0.0, 4.0, 1.0]], jnp.float32)
    g = grad(x)
    want = [[3 * 3 * 5, 0.0, 3 * 4 * 5, 3 * 1 * 1]] if complex_ else [[27.0, 0.0, 48.0, 3.0]]
    np.testing.assert_allclose(np.asarray(g), want, rtol=1e-5)


def _model(loss: str, coef: float) -> Model:
    return model_of(operator_of_relation=["none", "none"], relation_types=np.zeros((2, 2)),
                    relation_weight=np.array([2.0, 0.5]), loss=loss, margin=0.1, regularization_coef=coef)


def test_model_loss_weights_padding_and_regularizer():
    """Model.loss with hand numbers: ranking, margin 0.1, one chunk of 3 (last is padding).

    lhs side: pos 0, negs .5 / 1.0 / 9.0 -> per edge .6, 1.1, 9.1
    rhs side: pos 0, negs 0 / -1.0 / 9.0 -> per edge .1, 0,   9.1
    sum per edge: .7, 1.1 (padding's 18.2 dropped although its weight is set to 1 here)
    weights: edge 0 rel 0 (weight 2) x edge weight 1 = 2; edge 1 rel 1 (0.5) x 4 = 2
    data loss = 2 * .7 + 2 * 1.1 = 3.6; reg = 0.5 * (1 + 2 + 0) = 1.5; total 5.1; count 2.
    Without the rhs side: 2 * .6 + 2 * 1.1 = 3.4.
    """
    model = _model("ranking", 0.5)
    batch = Batch(lhs=jnp.asarray([[0, 1, -1]]), rhs=jnp.asarray([[2, 3, -1]]), rel=jnp.asarray([[0, 1, 0]]),
                  weight=jnp.asarray([[1.0, 4.0, 1.0]]))
    zeros = jnp.zeros((1, 3))
    ones = jnp.ones((1, 3, 1), bool)
    lhs_side = SideScores(zeros, jnp.asarray([[[0.5], [1.0], [9.0]]]), ones)
    rhs_side = SideScores(zeros, jnp.asarray([[[0.0], [-1.0], [9.0]]]), ones)
    penalty = jnp.asarray([[1.0, 2.0, 0.0]])
    total, stats = model.loss(lhs_side, rhs_side, penalty, batch)
    np.testing.assert_allclose(float(total), 5.1, rtol=1e-6)
    np.testing.assert_allclose(float(stats["loss"]), 3.6, rtol=1e-6)
    np.testing.assert_allclose(float(stats["reg"]), 1.5, rtol=1e-6)
    assert float(stats["count"]) == 2.0
    total, stats = model.loss(lhs_side, None, penalty, batch)
    np.testing.assert_allclose(float(stats["loss"]), 3.4, rtol=1e-6)


def test_model_without_regularization_has_no_penalty():
    """regularization_coef = 0 turns the regularizer off: reg is 0 whatever penalty is passed."""
    model = _model("softmax", 0.0)
    assert model.reg_fn is None
    batch = Batch(jnp.asarray([[0]]), jnp.asarray([[1]]), jnp.asarray([[0]]), jnp.asarray([[1.0]]))
    side = SideScores(jnp.zeros((1, 1)), jnp.zeros((1, 1, 1)), jnp.ones((1, 1, 1), bool))
    total, stats = model.loss(side, side, jnp.asarray([[3.0]]), batch)
    # softmax with one negative equal to the positive: -0 + ln(1 + 1) = ln2 per side, x rel weight 2
    np.testing.assert_allclose(float(total), 2 * 2 * LN2, rtol=1e-6)
    assert float(stats["reg"]) == 0.0


# ------------------------------------------------------------------ self-adversarial negatives
# (name, margin, temperature, pos [1], neg [1, 3], valid [1, 3], expected [1]); the weights are
# softmax(temperature x t) over the valid negatives: [0, ln3] at temperature 1 and [0, ln9] at
# temperature 1/2 both give [1/4, 3/4]
ADVERSARIAL = {
    # 1/4 max(0, 1 - 0 + 0) + 3/4 max(0, 1 - 0 + ln3) = 1 + 3/4 ln3
    "ranking": (1.0, 1.0, [0.0], [[0.0, LN3, 40.0]], [[True, True, False]], [1.0 + 0.75 * LN3]),
    # softplus(-0) + 1/4 softplus(0) + 3/4 softplus(ln9): ln2 + ln2/4 + 3/4 ln10
    "logistic": (0.1, 0.5, [0.0], [[0.0, 2 * LN3, -40.0]], [[True, True, False]],
                 [1.25 * LN2 + 0.75 * math.log(10.0)]),
    # gamma = ln2: softplus(-(ln2 + 0)) = ln(3/2); 1/4 softplus(ln2 + 0) + 3/4 softplus(ln2 + ln3)
    #   = ln3 / 4 + 3/4 ln7
    "logsigmoid": (LN2, 1.0, [0.0], [[0.0, LN3, 40.0]], [[True, True, False]],
                   [math.log(1.5) + 0.25 * LN3 + 0.75 * math.log(7.0)]),
}


@pytest.mark.parametrize("name", sorted(ADVERSARIAL))
def test_self_adversarial_golden_values(name):
    margin, temp, pos, neg, valid, expected = ADVERSARIAL[name]
    fn = loss_function(name, temp)
    got = fn(jnp.asarray(pos), jnp.asarray(neg), jnp.asarray(valid), margin)
    np.testing.assert_allclose(np.asarray(got), expected, rtol=1e-5, atol=1e-6)
    # temperature 0 is the plain loss
    assert loss_function(name, 0.0) is LOSSES.get(name).fn


def test_self_adversarial_weights_carry_no_gradient():
    """d/dt_j of the self-adversarial logistic loss is w_j sigmoid(t_j), the weights constants:
    t = [0, ln3] at temperature 1 -> w = [1/4, 3/4] -> [1/4 x 1/2, 3/4 x 3/4]; masked: 0."""
    fn = loss_function("logistic", 1.0)
    valid = jnp.asarray([[True, True, False]])
    g = jax.grad(lambda t: jnp.sum(fn(jnp.zeros(1), t, valid, 0.1)))(jnp.asarray([[0.0, LN3, 5.0]]))
    np.testing.assert_allclose(np.asarray(g), [[0.125, 0.5625, 0.0]], rtol=1e-5, atol=1e-7)


def test_adversarial_weights_edge_cases():
    """Weights sum to 1 over valid negatives, are 0 on masked ones and all 0 (not NaN) when no
    negative is valid; large scores do not overflow."""
    neg = jnp.asarray([[1e3, 1e3 - LN3, 3.0], [1.0, 2.0, 3.0]])
    valid = jnp.asarray([[True, True, False], [False, False, False]])
    w = np.asarray(adversarial_weights(neg, valid, 1.0))
    np.testing.assert_allclose(w, [[0.75, 0.25, 0.0], [0.0, 0.0, 0.0]], rtol=1e-3, atol=1e-7)


def test_softmax_has_no_self_adversarial_form():
    with pytest.raises(ValueError, match="self-adversarial"):
        loss_function("softmax", 1.0)


def test_model_uses_the_self_adversarial_loss():
    """Model(adversarial_temperature=1) sums the self-adversarial ranking loss of both sides:
    2 x (1 + 3/4 ln3) x relation weight 2."""
    model = Model(ModelSpec(dimension=4, operator_of_relation=["none"], relation_types=np.zeros((1, 2)),
                            relation_weight=np.array([2.0]), margin=1.0, adversarial_temperature=1.0))
    batch = Batch(jnp.asarray([[0]]), jnp.asarray([[1]]), jnp.asarray([[0]]), jnp.asarray([[1.0]]))
    side = SideScores(jnp.zeros((1, 1)), jnp.asarray([[[0.0, LN3, 40.0]]]),
                      jnp.asarray([[[True, True, False]]]))
    total, _ = model.loss(side, side, jnp.zeros((1, 1)), batch)
    np.testing.assert_allclose(float(total), 2 * 2 * (1.0 + 0.75 * LN3), rtol=1e-5)
