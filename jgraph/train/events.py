"""TensorBoard event files beside metrics.jsonl (optional: `training.tensorboard=true`).

Writes every number of an epoch's line (loss, reg, edges/s, IO seconds, periodic validation
metrics) as a scalar at step = epoch, and the final evaluation (`test/filtered/mrr`, ...) at the
last epoch, into `<run dir>/tensorboard/`. Uses tensorboardX (`pip install '.[tensorboard]'`), a
small package with no TensorFlow or PyTorch dependency; view with `tensorboard --logdir outputs`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jgraph.core.metrics import is_number


class EventLog:
    """Scalars to TensorBoard; `EventLog(None)` (disabled) accepts every call and writes nothing."""

    def __init__(self, directory: str | Path | None):
        self._writer = None
        if directory is None:
            return
        try:
            from tensorboardX import SummaryWriter
        except ImportError as e:
            raise ValueError("training.tensorboard=true needs tensorboardX: "
                             "pip install 'jgraph[tensorboard]' (or pip install tensorboardX)") from e
        self._writer = SummaryWriter(logdir=str(directory))

    def epoch(self, stats: dict[str, Any]) -> None:
        """One epoch's line of metrics.jsonl; its "epoch" key (1-based) is the step."""
        if self._writer is None:
            return
        step = int(stats["epoch"])
        for key, value in stats.items():
            if key != "epoch" and is_number(value):
                self._writer.add_scalar(f"train/{key}", float(value), step)

    def evaluation(self, evaluation: dict[str, Any], step: int) -> None:
        """metrics.json's "eval": {split: {protocol: {"avg"|"lhs"|"rhs": {name: value}}}}."""
        if self._writer is None:
            return
        for split, protocols in evaluation.items():
            for protocol, sides in protocols.items():
                for name, value in sides.get("avg", {}).items():
                    if name != "count" and is_number(value):
                        self._writer.add_scalar(f"{split}/{protocol}/{name}", float(value), step)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
