"""jgraph: graph embeddings too large for memory, in JAX (PyTorch-BigGraph's method).

The public API (importing jgraph imports no JAX; each name loads on first use):

    import jgraph
    run = jgraph.fit(["+debug=tiny"], run_dir="RUN")   # `jgraph train` overrides, or a TrainConfig
    model = jgraph.load("RUN")                          # a TrainedModel; needs no data files
    model.entity_names("entity")[:3]; model.embeddings("entity")       # numpy [N, D]
    model.score(["e1"], ["r1"], ["e2"])                                # numpy [1]
    model.predict(head="e1", relation="r1", k=10)                      # [(name, score)]
    model.neighbors("e1", k=10); model.evaluate(split="test")          # metrics dict

fit, load, compose and the classes live in jgraph.api; TrainConfig in jgraph.config; the errors
a user can cause (UserError and its subclasses) in jgraph.errors.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "fit": "jgraph.api", "load": "jgraph.api", "compose": "jgraph.api",
    "FitResult": "jgraph.api", "TrainedModel": "jgraph.api",
    "TrainConfig": "jgraph.config",
    "UserError": "jgraph.errors", "DataError": "jgraph.errors", "ConfigError": "jgraph.errors",
    "OptionError": "jgraph.errors", "TrainingDiverged": "jgraph.errors",
    "CheckpointError": "jgraph.storage.checkpoint",
}
__all__ = ["__version__", *_EXPORTS]

if TYPE_CHECKING:
    from jgraph.api import FitResult, TrainedModel, compose, fit, load  # noqa: F401
    from jgraph.config import TrainConfig  # noqa: F401
    from jgraph.errors import ConfigError, DataError, OptionError, TrainingDiverged, UserError  # noqa: F401
    from jgraph.storage.checkpoint import CheckpointError  # noqa: F401


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'jgraph' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
