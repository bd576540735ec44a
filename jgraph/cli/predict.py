"""`python -m jgraph.cli.predict RUN`: link prediction by name with a trained run's exact scorer.

    python -m jgraph.cli.predict RUN --head /m/02mjmr --relation /people/person/nationality --k 10
    python -m jgraph.cli.predict RUN --tail /m/09c7w0 --relation /people/person/nationality --filtered
    python -m jgraph.cli.predict RUN --head alice --relation follows --json

--head H --relation R ranks tails for (H, R, ?); --tail T --relation R ranks heads for (?, R, T).
Every entity of the candidate type is scored by `Model.query_scores` (the training scorer, with
`max_norm` and global embeddings applied as in evaluation), one partition at a time, keeping an
exact running top-k. Answers already known (train, valid and test edges) are marked `known`;
`--filtered` leaves them out (the filtered protocol's view of a query). An unknown name is an error
that lists close matches.
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jgraph.cli.main import run_arguments, run_command
from jgraph.core.scorer import float32_matmuls
from jgraph.errors import OptionError, UserError, command_parser
from jgraph.trained import OpenRun, open_run


class UnknownName(UserError, KeyError):
    """A name that is not in the run's dictionary; the message lists close matches."""

    def __str__(self) -> str:
        return str(self.args[0])


def positive_k(k: int) -> int:
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise OptionError(f"k must be a positive whole number, got {k!r}")
    return k


def close_matches(name: str, names: pa.Array, n: int = 5, scan: int = 200_000) -> list[str]:
    """Up to n names like `name`: same text ignoring case, names containing it, then the most
    similar (difflib) among names of about its length (a sample of `scan` of them, at most)."""
    out: list[str] = []
    if len(names) == 0:
        return out
    lower = pc.utf8_lower(names)
    for mask in (pc.equal(lower, name.lower()), pc.match_substring(lower, name.lower())):
        out += [x for x in names.filter(mask).slice(0, n).to_pylist() if x not in out]
    if len(out) < n:
        ln = pc.utf8_length(names)
        near = names.filter(pc.and_(pc.greater_equal(ln, len(name) - 3), pc.less_equal(ln, len(name) + 3)))
        if len(near) > scan:
            near = near.take(pa.array(np.random.default_rng(0).choice(len(near), scan, replace=False)))
        out += [x for x in difflib.get_close_matches(name, near.to_pylist(), n, 0.6) if x not in out]
    return out[:n]


def find_id(names: pa.Array | None, name: str, what: str) -> int:
    """Id of an entity (or relation) name; UnknownName listing close matches when absent."""
    if names is None:  # a dataset kept without names: ids are the names
        if name.isdigit():
            return int(name)
        raise UnknownName(f"{what} {name!r}: this dataset keeps no names; give the id")
    i = pc.index(names, pa.scalar(name, names.type)).as_py()
    if i < 0:
        like = close_matches(name, names)
        raise UnknownName(f"unknown {what} {name!r}" + (f"; close matches: {', '.join(map(repr, like))}"
                                                        if like else "; no close match"))
    return int(i)


def entity_label(entity_type: str) -> str:
    return "entity" if entity_type == "entity" else f"entity of type {entity_type!r}"


@dataclass
class Answer:
    rank: int
    name: str
    id: int
    score: float
    known: bool


def _renorm(run: OpenRun, rows: np.ndarray) -> jax.Array:
    return run.model.renorm(jnp.asarray(rows, jnp.float32))


@partial(jax.jit, static_argnames=("model", "side", "k"))
@float32_matmuls
def _top(model, params, fixed, fixed_type, rel, cands, cand_type, banned, *, side, k):
    scores = model.query_scores(params, fixed, fixed_type, rel, cands, cand_type, side)[0]
    scores = jnp.where(banned, -jnp.inf, scores)
    return jax.lax.top_k(scores, k)


def known_answers(run: OpenRun, side: int, fixed: int, rel: int, required: bool = False) -> np.ndarray:
    """Ids of the known answers of a query (train, valid and test edges); a prepared dataset's
    train edges are read from the buckets of the fixed entity's partition only. Without the data
    files: none (DataError when `required`)."""
    ds = run.data(required=required)
    if ds is None:
        return np.zeros(0, np.int64)
    out = []
    for e in ds.splits.values():
        m = ((e.rhs if side == 0 else e.lhs) == fixed) & (e.rel == rel)
        out.append((e.lhs if side == 0 else e.rhs)[m])
    if ds.train_buckets is not None and "train" not in ds.splits:
        from jgraph.storage.edges import EdgeBucketStore

        lt, rt = ds.relation_types[rel]
        f_tp, a_tp = run.layout.types[rt if side == 0 else lt], run.layout.types[lt if side == 0 else rt]
        f_part = int(f_tp.part_of[fixed]) if f_tp.num_partitions > 1 else 0
        f_row = int(f_tp.offset_of[fixed])
        store = EdgeBucketStore(ds.train_buckets)
        try:
            n_other = store.n_lhs if side == 0 else store.n_rhs
            for j in range(n_other if a_tp.num_partitions > 1 else 1):
                bucket = (j, f_part) if side == 0 else (f_part, j)
                lhs, rhs, r, _ = store.edges(bucket)
                f_off, a_off = (rhs, lhs) if side == 0 else (lhs, rhs)
                m = (f_off == f_row) & (r == rel)
                out.append(a_tp.members[j][a_off[m]])
        finally:
            store.close()
    return np.unique(np.concatenate(out)) if out else np.zeros(0, np.int64)


def predict(run: OpenRun, relation: str, head: str | None = None, tail: str | None = None,
            k: int = 10, filtered: bool = False) -> list[Answer]:
    """Top-k tails of (head, relation, ?) or heads of (?, relation, tail)."""
    if (head is None) == (tail is None):
        raise OptionError("give --head or --tail (not both)")
    positive_k(k)
    ds, model = run.ds, run.model
    rel = find_id(pa.array(ds.relation_names, pa.string()), relation, "relation")
    side = 1 if head is not None else 0  # the side being predicted
    lt, rt = (int(x) for x in ds.relation_types[rel])
    fixed_t, cand_t = (lt, rt) if side == 1 else (rt, lt)
    f_tp, c_tp = run.layout.types[fixed_t], run.layout.types[cand_t]
    fixed = find_id(run.names(f_tp.name), head if side == 1 else tail, entity_label(f_tp.name))
    part = int(f_tp.part_of[fixed]) if f_tp.num_partitions > 1 else 0
    fixed_row = _renorm(run, run.partition(fixed_t, part)[f_tp.offset_of[fixed]][None])
    known = known_answers(run, side, fixed, rel, required=filtered)
    best_s, best_i = np.zeros(0, np.float32), np.zeros(0, np.int64)
    for p in range(c_tp.num_partitions):
        members = c_tp.members[p]
        banned = np.isin(members, known) if filtered else np.zeros(len(members), bool)
        kk = min(k, len(members))
        if kk == 0:
            continue
        s, i = _top(model, run.params, fixed_row, jnp.array([fixed_t]), jnp.array([rel]),
                    _renorm(run, run.partition(cand_t, p)), jnp.int32(cand_t), jnp.asarray(banned),
                    side=side, k=kk)
        s, i = np.asarray(s), members[np.asarray(i)]
        keep = np.isfinite(s)
        best_s, best_i = np.concatenate([best_s, s[keep]]), np.concatenate([best_i, i[keep]])
        order = np.lexsort((best_i, -best_s))[:k]
        best_s, best_i = best_s[order], best_i[order]
    names = run.names(c_tp.name)
    return [Answer(r + 1, names[int(i)].as_py() if names is not None else str(int(i)), int(i), float(s),
                   bool(np.isin(i, known))) for r, (s, i) in enumerate(zip(best_s, best_i, strict=True))]


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.cli.predict", __doc__)
    run_arguments(p)
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--head", help="rank tails of (HEAD, RELATION, ?)")
    g.add_argument("--tail", help="rank heads of (?, RELATION, TAIL)")
    p.add_argument("--relation", required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--filtered", action="store_true", help="leave out answers known from the data")
    p.add_argument("--json", action="store_true", help="print JSON lines")
    a = p.parse_args(argv)
    positive_k(a.k)
    run = open_run(a.run, a.set, a.allow_plugin)
    try:
        answers = predict(run, a.relation, a.head, a.tail, a.k, a.filtered)
    finally:
        run.close()
    query = f"({a.head}, {a.relation}, ?)" if a.head is not None else f"(?, {a.relation}, {a.tail})"
    if not a.json:
        print(f"top {len(answers)} for {query}" + (" (known answers left out)" if a.filtered else ""))
    for x in answers:
        if a.json:
            print(json.dumps(x.__dict__))
        else:
            print(f"{x.rank:4d}  {x.score:10.4f}  {x.name}" + ("  (known)" if x.known else ""))
    return 0


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.predict", main))
