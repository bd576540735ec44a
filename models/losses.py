"""Losses (PBG `losses.py` semantics), per positive: pos [...], neg [..., N], valid bool [..., N].

Invalid negatives (a positive against itself, padding) contribute nothing. The engine multiplies by
the edge and relation weights and sums over the batch, as PBG does.
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


LOSSES.register("ranking")(Loss(fn=_ranking))
LOSSES.register("logistic")(Loss(fn=_logistic))
LOSSES.register("softmax")(Loss(fn=_softmax))
