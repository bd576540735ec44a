"""Early stopping on the periodic validation MRR (training.early_stopping_patience, evaluated every
eval.every_epochs epochs).

The best evaluated epoch's entity tables and relation parameters are kept on the host (the final
evaluation ranks with them) and, when the run saves checkpoints, preserved as the checkpoint
snapshot `snapshots/best.json` right after that epoch's commit. Training stops once `patience`
evaluations in a row have not beaten the best MRR. The checkpoint itself stays at the last trained
epoch (a resumed run continues from there); metrics.json's "early_stopping" says which epoch the
final evaluation used.
"""

from __future__ import annotations

import math
from typing import Any

import jax
import numpy as np


class EarlyStopping:
    """Watches the validation MRR (higher is better) over periodic evaluations."""

    def __init__(self, patience: int, num_epochs: int) -> None:
        self.patience, self.num_epochs = patience, num_epochs
        self.best_mrr = -math.inf
        self.best_epoch: int | None = None  # 0-based
        self.since_best = 0  # evaluations since the best
        self.last_epoch: int | None = None  # the last epoch trained (0-based)
        self.best: tuple[np.ndarray, np.ndarray, Any] | None = None  # emb [N, D], offsets [T], params

    def update(self, epoch: int, mrr: float, emb: Any, offsets: np.ndarray, params: Any) -> bool:
        """After evaluating epoch `epoch` (0-based) at `mrr`, with its full tables (emb float
        [N, D], offsets int [T]) and relation parameters: True when it is the new best (kept)."""
        if mrr > self.best_mrr:  # NaN never is
            self.best_mrr, self.best_epoch, self.since_best = mrr, epoch, 0
            # host copies: training donates (and so overwrites) its device buffers
            self.best = (np.array(emb, copy=True), np.array(offsets, copy=True),
                         jax.tree_util.tree_map(lambda a: np.array(a, copy=True), params))
            return True
        self.since_best += 1
        return False

    def epoch_done(self, epoch: int) -> bool:
        """After epoch `epoch` is trained (and committed): True to stop training now."""
        self.last_epoch = epoch
        return self.patience > 0 and self.since_best >= self.patience

    def restores(self) -> bool:
        """The final evaluation uses the kept epoch (a later one was trained)."""
        return self.best is not None and self.best_epoch != self.last_epoch

    def summary(self) -> dict[str, Any]:
        """metrics.json's "early_stopping", epochs 1-based as the log prints them."""
        last = None if self.last_epoch is None else self.last_epoch + 1
        best = None if self.best_epoch is None else self.best_epoch + 1
        return {"patience": self.patience, "best_epoch": best,
                "best_valid_mrr": None if best is None else self.best_mrr,
                "epochs_trained": last, "stopped_early": last is not None and last < self.num_epochs,
                "evaluated_epoch": best if self.restores() else last}
