"""Losses (PBG `losses.py` semantics), per positive: pos [...], neg [..., N], valid bool [..., N].

Invalid negatives (a positive against itself, padding) contribute nothing. The engine multiplies by
the edge and relation weights and sums over the batch, as PBG does.

Each loss but softmax also has a weighted form, w [..., N] (>= 0, summing to 1 over the valid
negatives): the expectation of its negatives' terms under w. With loss.adversarial_temperature = a
the engine passes w = softmax(a t) (Sun et al. 2019's self-adversarial sampling; softmax already
weights its negatives' gradients by softmax(t)).

logsigmoid  RotatE's loss (Sun et al. 2019, eq. 5), margin = its gamma:
            -log sigmoid(gamma + s) - mean_j log sigmoid(-gamma - t_j), the mean over valid negatives
            (a distance comparator's score s = -d gives sigmoid(gamma - d)).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jgraph.core.scorer import LOSSES, Loss

_MASKED = -1e9  # the score PBG gives ignored negatives; finite, so no NaN in gradients


def _ranking(pos, neg, valid, margin):
    """sum_j max(0, margin - s_i + t_ij)."""
    viol = jnp.maximum(margin - pos[..., None] + neg, 0.0)
    return jnp.sum(jnp.where(valid, viol, 0.0), axis=-1)


def _logistic(pos, neg, valid, margin):
    """BCE(s_i, 1) + (1/N) sum_j BCE(t_ij, 0), N = the number of negative columns (as PBG)."""
    pos_loss = jax.nn.softplus(-pos)
    neg_loss = jnp.sum(jnp.where(valid, jax.nn.softplus(neg), 0.0), axis=-1)
    return pos_loss + neg_loss / max(neg.shape[-1], 1)


def _softmax(pos, neg, valid, margin):
    """-s_i + log(exp(s_i) + sum_j exp(t_ij)): cross-entropy of the positive among its negatives."""
    masked = jnp.where(valid, neg, _MASKED)
    lse_neg = jax.nn.logsumexp(masked, axis=-1)
    return jnp.logaddexp(pos, lse_neg) - pos


def _ranking_weighted(pos, neg, w, margin):
    """sum_j w_j max(0, margin - s_i + t_ij)."""
    return jnp.sum(w * jnp.maximum(margin - pos[..., None] + neg, 0.0), axis=-1)


def _logistic_weighted(pos, neg, w, margin):
    """BCE(s_i, 1) + sum_j w_j BCE(t_ij, 0)."""
    return jax.nn.softplus(-pos) + jnp.sum(w * jax.nn.softplus(neg), axis=-1)


def _logsigmoid_weighted(pos, neg, w, margin):
    """softplus(-(gamma + s_i)) + sum_j w_j softplus(gamma + t_ij) (-log sigmoid(x) = softplus(-x))."""
    return jax.nn.softplus(-(pos + margin)) + jnp.sum(w * jax.nn.softplus(neg + margin), axis=-1)


def _logsigmoid(pos, neg, valid, margin):
    n = jnp.sum(valid, axis=-1, keepdims=True)
    return _logsigmoid_weighted(pos, neg, jnp.where(valid, 1.0 / jnp.maximum(n, 1), 0.0), margin)


LOSSES.register("ranking")(Loss(fn=_ranking, weighted=_ranking_weighted))
LOSSES.register("logistic")(Loss(fn=_logistic, weighted=_logistic_weighted))
LOSSES.register("softmax")(Loss(fn=_softmax))
LOSSES.register("logsigmoid")(Loss(fn=_logsigmoid, weighted=_logsigmoid_weighted))
