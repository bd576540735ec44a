"""The divergence guard: after each bucket and before anything it trained is committed, the
bucket's loss and the working table's row magnitude are compared with running baselines; a run
that has blown up stops with TrainingDiverged, and the last committed version (the last good one)
stays the checkpoint.

- loss: the bucket's per-edge loss against the highest per-edge bucket loss of the run so far (in
  a healthy run that is the loss of untrained rows, which training only lowers);
- rows: the mean absolute coordinate of the working table against the highest seen after earlier
  buckets, and at least 1 (initial rows are N(0, init_scale^2), trained rows of PBG-style models
  stay well under 1 per coordinate; a diverging run's grow by orders of magnitude: 1e6 at
  optimizer.lr=1e6 after one bucket).
Either above `training.divergence_factor` times its baseline (default 10; 0 turns both off) stops
the run; a non-finite loss always does.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from jgraph.core.optim import decode_rows
from jgraph.errors import TrainingDiverged

ADVICE = "Lower optimizer.lr or check the data weights."


@jax.jit
def mean_abs(emb: jax.Array) -> jax.Array:
    """Mean absolute coordinate of a table [K, D] (float32 or bfloat16 bits): no overflow for
    rows of any size short of inf."""
    return jnp.mean(jnp.abs(decode_rows(emb)))


class DivergenceGuard:
    """Baselines of one training job (restarted with the job: the first bucket after a resume
    sets them)."""

    def __init__(self, factor: float) -> None:
        self.factor = factor
        self.peak_loss = 0.0
        self.peak_size = 1.0

    def check(self, loss: float, emb: jax.Array, where: str, kept: str) -> None:
        """loss: the bucket's per-edge loss; emb: the working table [K, D] after it; where: the
        epoch and bucket, kept: which version stays the checkpoint (both for the message)."""
        if not self.factor:
            return
        size = float(mean_abs(emb))
        if self.peak_loss and loss > self.factor * self.peak_loss:
            why = (f"per-edge loss {loss:.4g}, over {self.factor:g}x the run's highest so far "
                   f"({self.peak_loss:.4g})")
        elif not math.isfinite(size) or size > self.factor * self.peak_size:
            why = (f"mean |row coordinate| {size:.4g}, over {self.factor:g}x its baseline "
                   f"({self.peak_size:.4g})")
        else:
            self.peak_loss = max(self.peak_loss, loss)
            self.peak_size = max(self.peak_size, size)
            return
        raise TrainingDiverged(f"training diverged in {where}: {why}; stopped without saving ({kept}). "
                               f"{ADVICE} (training.divergence_factor=0 turns this check off)")
