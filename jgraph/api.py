"""The Python API behind `jgraph.fit` and `jgraph.load` (see jgraph/__init__.py and docs/library.md).

    import jgraph
    run = jgraph.fit(["+debug=tiny"], run_dir="RUN")   # the command line's overrides, or a TrainConfig
    model = jgraph.load("RUN")                          # needs no data files (names kept with the run)
    model.embeddings("entity")                          # numpy [N, D]
    model.predict(head="e1", relation="r1", k=10)       # [(name, score)], best first

Everything here reuses the commands' code (jgraph.cli.predict, neighbors, export, evaluate) on one
open run; partitions are read one at a time, so a partitioned run larger than memory loads lazily.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from jgraph.config import TrainConfig
from jgraph.errors import OptionError


@dataclass
class FitResult:
    """What `fit` returns: the run's metrics (as in its metrics.json) and its directory."""

    metrics: dict[str, Any]
    run_dir: Path

    def load(self, allow_plugins: list[str] | tuple[str, ...] = ()) -> TrainedModel:
        return load(self.run_dir, allow_plugins)

    def __repr__(self) -> str:
        ev = {f"{s}/{p}": round(r["avg"]["mrr"], 4) for s, res in self.metrics.get("eval", {}).items()
              for p, r in res.items() if isinstance(r, dict) and "avg" in r}
        return f"FitResult(run_dir={str(self.run_dir)!r}, mrr={ev})"


def compose(overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The TrainConfig the command line `jgraph train OVERRIDES...` would run (validated)."""
    from jgraph.cli.train import compose_config

    return compose_config(overrides)


def fit(config: TrainConfig | list[str] | tuple[str, ...] | None = None, run_dir: str | Path | None = None,
        log: bool = True) -> FitResult:
    """Train as `config` says (a TrainConfig, or `jgraph train` overrides such as
    ["+experiment=fb15k237", "data.path=/data/mine"]) into `run_dir` (default
    outputs/<data.name>/<date>), and evaluate. `log`: show the progress lines (logger `jgraph`)."""
    from jgraph.train.run import run

    if isinstance(config, str):
        raise OptionError(f"fit: give a list of overrides ([{config!r}]) or a TrainConfig, not a string")
    cfg = config if isinstance(config, TrainConfig) else compose(config or ())
    from jgraph.config import to_config

    cfg = to_config(cfg)
    out = Path(run_dir) if run_dir is not None else \
        Path("outputs") / (cfg.data.name or "run") / time.strftime("%Y-%m-%d_%H-%M-%S")
    logger = logging.getLogger("jgraph")
    handler = None
    if log and not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        from jgraph.train.recipe import given_keys

        metrics = run(cfg, str(out), given_keys(list(config)) if isinstance(config, (list, tuple)) else
                      frozenset())
    finally:
        if handler is not None:
            logger.removeHandler(handler)
    return FitResult(metrics, out)


def load(run_dir: str | Path, allow_plugins: list[str] | tuple[str, ...] = ()) -> TrainedModel:
    """A trained run, opened for read-out (no data files needed). `allow_plugins`: plugin modules
    the run names that may be imported besides the installed `models`."""
    from jgraph.trained import open_run

    return TrainedModel(open_run(str(run_dir), None, allow_plugins), str(run_dir), tuple(allow_plugins))


class TrainedModel:
    """A trained run's embeddings and scorer by entity and relation name."""

    def __init__(self, run, path: str, allow_plugins: tuple[str, ...] = ()) -> None:
        self.run = run  # jgraph.trained.OpenRun
        self.path = path
        self.allow_plugins = allow_plugins

    @property
    def config(self) -> TrainConfig:
        return self.run.cfg

    @property
    def entity_types(self) -> list[str]:
        return list(self.run.ds.entity_types)

    @property
    def relation_names(self) -> list[str]:
        return list(self.run.ds.relation_names)

    def _type(self, entity_type: str) -> int:
        if entity_type not in self.run.ds.entity_types:
            raise OptionError(f"unknown entity type {entity_type!r} (types: {', '.join(self.entity_types)})")
        return self.run.ds.entity_types.index(entity_type)

    def entity_names(self, entity_type: str = "entity") -> list[str]:
        """Names of one entity type in id order (row i of `embeddings` is entity_names()[i])."""
        t = self._type(entity_type)
        names = self.run.names(entity_type)
        count = self.run.layout.types[t].count
        return [str(i) for i in range(count)] if names is None else names.to_pylist()

    def embeddings(self, entity_type: str = "entity") -> np.ndarray:
        """float32 [N, D]: the entities' vectors as the scorer sees them (max_norm and the type's
        global embedding applied; calibrated partitions shifted), in id order, read a partition
        at a time."""
        from jgraph.cli.export import effective_rows

        t = self._type(entity_type)
        tp = self.run.layout.types[t]
        out = np.empty((tp.count, self.run.model.dimension), np.float32)
        for p in range(tp.num_partitions):
            out[tp.members[p]] = effective_rows(self.run, t, self.run.partition(t, p))
        return out

    def score(self, heads: list[str], relations: list[str], tails: list[str]) -> np.ndarray:
        """float32 [B]: the training scorer's score of each (head, relation, tail), as `predict`
        ranks tails (higher is more likely)."""
        import jax.numpy as jnp
        import pyarrow as pa

        from jgraph.cli.predict import entity_label, find_id

        if not len(heads) == len(relations) == len(tails):
            raise OptionError(f"score: heads, relations and tails differ in length "
                              f"({len(heads)}, {len(relations)}, {len(tails)})")
        run, ds = self.run, self.run.ds
        rel_names = pa.array(ds.relation_names, pa.string())
        cache: dict[tuple[int, int], np.ndarray] = {}

        def row(t: int, name: str) -> np.ndarray:
            tp = run.layout.types[t]
            eid = find_id(run.names(tp.name), name, entity_label(tp.name))
            part = int(tp.part_of[eid]) if tp.num_partitions > 1 else 0
            if (t, part) not in cache:
                cache[(t, part)] = run.partition(t, part)
            return cache[(t, part)][tp.offset_of[eid]]

        out = np.empty(len(heads), np.float32)
        for i, (h, r, tl) in enumerate(zip(heads, relations, tails, strict=True)):
            rel = find_id(rel_names, r, "relation")
            lt, rt = (int(x) for x in ds.relation_types[rel])
            fixed = run.model.renorm(jnp.asarray(row(lt, h)[None], jnp.float32))
            cand = run.model.renorm(jnp.asarray(row(rt, tl)[None], jnp.float32))
            s = run.model.query_scores(run.params, fixed, jnp.array([lt]), jnp.array([rel]), cand,
                                       jnp.int32(rt), 1)
            out[i] = float(np.asarray(s)[0, 0])
        return out

    def predict(self, head: str | None = None, relation: str | None = None, tail: str | None = None,
                k: int = 10, filtered: bool = False) -> list[tuple[str, float]]:
        """The k best tails of (head, relation, ?) or heads of (?, relation, tail), best first;
        `filtered` leaves out answers known from the data (needs the data files)."""
        from jgraph.cli.predict import predict

        if relation is None:
            raise OptionError("predict: give relation=")
        return [(a.name, a.score) for a in predict(self.run, relation, head, tail, k, filtered)]

    def neighbors(self, name: str, k: int = 10, entity_type: str | None = None) -> list[tuple[str, float]]:
        """The k entities nearest to `name` under the run's comparator (itself excluded)."""
        from jgraph.cli.neighbors import neighbors

        return [(n.name, n.score) for n in neighbors(self.run, name, k, entity_type)]

    def evaluate(self, split: str = "test", protocols: tuple[str, ...] = ("filtered",),
                 max_edges: int | None = None) -> dict:
        """Link-prediction metrics on a split: {protocol: {"lhs", "rhs", "avg": {"mrr", ...}}}.
        Reads the run's data files (a DataError says so when they are gone)."""
        from jgraph.cli.evaluate import evaluate

        res = evaluate(self.path, [split], list(protocols), max_edges, [], self.allow_plugins)
        return res["eval"][split]

    def export(self, out: str | Path, format: str = "npy") -> dict:
        """Write the embeddings as `jgraph export` does (tsv, npy or parquet); returns its manifest."""
        from jgraph.cli.export import export

        return export(self.path, format, str(out), None, self.allow_plugins)

    def close(self) -> None:
        self.run.close()

    def __enter__(self) -> TrainedModel:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        c = self.run.cfg.model
        ents = ", ".join(f"{tp.name} {tp.count:,}" for tp in self.run.layout.types)
        return (f"TrainedModel({self.path!r}: {c.operator} {c.comparator} d={c.dimension}; entities "
                f"{ents}; {len(self.run.ds.relation_names)} relations)")
