"""`python -m jgraph.cli.neighbors RUN --entity NAME`: the k nearest entities under the run's comparator.

    python -m jgraph.cli.neighbors RUN --entity /m/02mjmr --k 10
    python -m jgraph.cli.neighbors RUN --entity alice --type user --ann usearch   # approximate, optional

Nearness is the comparator's score between two entities' vectors (dot, cos, -l2, -squared l2; the
vectors as the scorer sees them: max_norm and the type's global embedding applied). Exact search
scores every entity of the type, one partition at a time, with a jitted top-k. `--ann usearch`
builds an HNSW index of the type's vectors instead (the optional extra `pip install usearch`,
useful for many queries over millions of rows; built per call here, not stored).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.cli.export import effective_rows
from jgraph.cli.main import run_arguments, run_command
from jgraph.cli.predict import UnknownName, entity_label, find_id, positive_k
from jgraph.core.scorer import float32_matmuls
from jgraph.errors import OptionError, command_parser
from jgraph.trained import OpenRun, open_run

ANN_METRICS = {"dot": "ip", "cos": "cos", "l2": "l2sq", "squared_l2": "l2sq"}


@dataclass
class Neighbor:
    rank: int
    name: str
    id: int
    score: float


@partial(jax.jit, static_argnames=("comparator", "k"))
@float32_matmuls
def _top(comparator, x, rows, banned, *, k):
    scores = comparator.neg(comparator.prepare(x)[None], comparator.prepare(rows)[None])[0, 0]
    return jax.lax.top_k(jnp.where(banned, -jnp.inf, scores), k)


def _entity(run: OpenRun, entity: str, entity_type: str | None) -> tuple[int, int]:
    """(type index, id) of a name, in the given type or the first type that has it."""
    types = [entity_type] if entity_type else [tp.name for tp in run.layout.types]
    errors = []
    for name in types:
        if name not in run.ds.entity_types:
            raise UnknownName(f"unknown entity type {name!r} (types: {', '.join(run.ds.entity_types)})")
        t = run.ds.entity_types.index(name)
        try:
            return t, find_id(run.names(name), entity, entity_label(name))
        except UnknownName as e:
            errors.append(str(e))
    raise UnknownName("; ".join(errors))


def neighbors(run: OpenRun, entity: str, k: int = 10, entity_type: str | None = None,
              ann: str | None = None) -> list[Neighbor]:
    """The k entities of the same type nearest to `entity` (itself excluded)."""
    positive_k(k)
    t, eid = _entity(run, entity, entity_type)
    tp = run.layout.types[t]
    part = int(tp.part_of[eid]) if tp.num_partitions > 1 else 0
    x = effective_rows(run, t, run.partition(t, part)[tp.offset_of[eid]][None])
    comparator = run.model.comparator
    if ann:
        s, i = _ann(run, t, x[0], k + 1, ann)
    else:
        s, i = np.zeros(0, np.float32), np.zeros(0, np.int64)
        for p in range(tp.num_partitions):
            members = tp.members[p]
            kk = min(k + 1, len(members))
            if kk == 0:
                continue
            rows = jnp.asarray(effective_rows(run, t, run.partition(t, p)))
            ps, pi = _top(comparator, jnp.asarray(x), rows, jnp.asarray(members == eid), k=kk)
            ps, pi = np.asarray(ps), members[np.asarray(pi)]
            s, i = np.concatenate([s, ps]), np.concatenate([i, pi])
            order = np.lexsort((i, -s))[: k + 1]
            s, i = s[order], i[order]
    keep = (i != eid) & np.isfinite(s)
    s, i = s[keep][:k], i[keep][:k]
    names = run.names(tp.name)
    return [Neighbor(r + 1, names[int(j)].as_py() if names is not None else str(int(j)), int(j), float(v))
            for r, (v, j) in enumerate(zip(s, i, strict=True))]


def _ann(run: OpenRun, t: int, x: np.ndarray, k: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    if kind != "usearch":
        raise OptionError(f"--ann: only usearch is supported, got {kind!r}")
    try:
        from usearch.index import Index
    except ImportError:
        raise OptionError("--ann usearch needs the optional extra: pip install usearch") from None
    metric = ANN_METRICS[run.cfg.model.comparator]
    tp = run.layout.types[t]
    index = Index(ndim=x.shape[-1], metric=metric, dtype="f32")
    for p in range(tp.num_partitions):
        index.add(tp.members[p].astype(np.uint64), effective_rows(run, t, run.partition(t, p)))
    found = index.search(x, k)
    ids = np.asarray(found.keys, np.int64)
    # report the comparator's own score (usearch returns distances)
    rows = np.stack([_row(run, t, int(j)) for j in ids]) if len(ids) else np.zeros((0, x.shape[-1]))
    c = run.model.comparator
    scores = c.neg(c.prepare(jnp.asarray(x[None, None])), c.prepare(jnp.asarray(rows[None], jnp.float32)))
    return np.asarray(scores)[0, 0], ids


def _row(run: OpenRun, t: int, eid: int) -> np.ndarray:
    tp = run.layout.types[t]
    part = int(tp.part_of[eid]) if tp.num_partitions > 1 else 0
    return effective_rows(run, t, run.partition(t, part)[tp.offset_of[eid]][None])[0]


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.cli.neighbors", __doc__)
    run_arguments(p)
    p.add_argument("--entity", required=True)
    p.add_argument("--type", default=None, help="entity type (default: the first that has the name)")
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--ann", default=None, choices=["usearch"], help="approximate search (optional extra)")
    p.add_argument("--json", action="store_true")
    a = p.parse_args(argv)
    positive_k(a.k)
    run = open_run(a.run, a.set, a.allow_plugin)
    try:
        found = neighbors(run, a.entity, a.k, a.type, a.ann)
    finally:
        run.close()
    if not a.json:
        print(f"{len(found)} nearest to {a.entity!r} ({run.cfg.model.comparator})")
    for n in found:
        print(json.dumps(n.__dict__) if a.json else f"{n.rank:4d}  {n.score:10.4f}  {n.name}")
    return 0


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.neighbors", main))
