"""`python -m jgraph.cli.export RUN --format tsv|npy|parquet --out DIR`: embeddings and relation
parameters of a trained run, for use outside jgraph.

    python -m jgraph.cli.export outputs/fb15k237/2026-11-22_10-00-00 --format npy --out emb/
    python -m jgraph.cli.export RUN --format tsv --out emb/ --set data.root=/data

The entity vectors are those the scorer uses: `model.max_norm` applied and the entity type's
global embedding added (as PBG's export adds it). Tables are read one partition at a time.
Layout of DIR (all formats: manifest.json = dimension, comparator, bias, reciprocal, entity types
and counts, relations with their sides, operators and types, and the files written):
  tsv      entities.tsv: `name<TAB>v1 ... vD` per entity (PBG's export_to_tsv; types in order,
           partition by partition); relation_types.tsv: `rel_name<TAB>side<TAB>operator<TAB>
           param_name<TAB>shape<TAB>values...` (shape 'x'-joined; standard mode writes only rhs
           rows, reciprocal mode lhs and rhs). Values are float32, shortest round-trip text.
  npy      {type}.npy [count, D] float32 in entity-id order + {type}_names.json (JSON list, index =
           id); relations.json; {side}.{operator}.{param}.npy [relations, ...] (row r = relation r).
           --per-partition (tables larger than memory: nothing but one partition is ever held):
           {type}.p{P}.npy [rows of partition P, D] + {type}.p{P}.ids.npy int64 (their entity
           ids) + {type}_names.parquet (column name, id order) instead of {type}.npy/_names.json.
  parquet  {type}.parquet (name: string, embedding: fixed_size_list<float32>[D]); relations.parquet
           (name, side, operator, param, shape, values: list<float32>).
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jgraph.cli.main import run_arguments, run_command
from jgraph.errors import OptionError, command_parser
from jgraph.trained import OpenRun, open_run

FORMATS = ("tsv", "npy", "parquet")


def effective_rows(run: OpenRun, t: int, rows: np.ndarray) -> np.ndarray:
    """Rows as the scorer sees them: max_norm renormalisation, then the type's global embedding."""
    rows = np.asarray(rows, np.float32)
    m = run.cfg.model
    if m.max_norm is not None:
        norm = np.sqrt(np.sum(rows * rows, axis=-1, keepdims=True))
        rows = rows * np.minimum(1.0, m.max_norm / np.maximum(norm, 1e-12))
    if run.model.global_emb:
        rows = rows + np.asarray(run.params["global"][t], np.float32)
    return rows.astype(np.float32)


def relation_rows(run: OpenRun):
    """(relation name, side, operator, param name, array) for every relation parameter."""
    sides = ("lhs", "rhs") if run.model.reciprocal else ("rhs",)
    for r, name in enumerate(run.ds.relation_names):
        kind = run.model.kinds[run.model.kind_of_relation[r]]
        for side in sides:
            for param, value in sorted(run.params[side][kind].items()):
                yield name, side, kind, param, np.asarray(value[r], np.float32)


def manifest(run: OpenRun, fmt: str, files: list[str]) -> dict:
    m = run.model
    return {
        "format": fmt, "checkpoint": run.location, "checkpoint_version": run.store.version,
        "dimension": m.dimension, "comparator": run.cfg.model.comparator, "bias": run.cfg.model.bias,
        "reciprocal": m.reciprocal, "max_norm_applied": run.cfg.model.max_norm,
        "global_embedding_added": m.global_emb,
        "entity_types": {tp.name: {"count": tp.count} for tp in run.layout.types},
        "relations": [{"name": n, "lhs": run.ds.entity_types[a], "rhs": run.ds.entity_types[b],
                       "operator": m.kinds[m.kind_of_relation[i]]}
                      for i, (n, (a, b)) in enumerate(zip(run.ds.relation_names, run.ds.relation_types,
                                                          strict=True))],
        "relation_sides": ["lhs", "rhs"] if m.reciprocal else ["rhs"],
        "files": files,
    }


def _names(run: OpenRun, t: int) -> pa.Array:
    tp = run.layout.types[t]
    names = run.names(tp.name)
    if names is None:  # a dataset without names: the ids are the names
        names = pa.array([str(i) for i in range(tp.count)])
    return names


def _tsv_block(names: pa.Array, rows: np.ndarray) -> bytes:
    cols = {"name": names, **{f"v{i}": rows[:, i] for i in range(rows.shape[1])}}
    buf = io.BytesIO()
    try:
        pacsv.write_csv(pa.table(cols), buf, write_options=pacsv.WriteOptions(
            include_header=False, delimiter="\t", quoting_style="none"))
    except pa.ArrowInvalid as e:
        raise OptionError(f"a name holds a tab or a newline, which TSV cannot carry ({e}); "
                         "export with --format npy or parquet") from None
    return buf.getvalue()


def write_partition(run: OpenRun, t: int, p: int, dest: Path) -> list[str]:
    """--per-partition npy: {type}.p{p}.npy (the partition's effective rows) and {type}.p{p}.ids.npy
    (their entity ids) in `dest`; returns the file names. Memory: one partition."""
    tp = run.layout.types[t]
    rows, ids = f"{tp.name}.p{p}.npy", f"{tp.name}.p{p}.ids.npy"
    np.save(dest / rows, effective_rows(run, t, run.partition(t, p)))
    np.save(dest / ids, np.asarray(tp.members[p], np.int64))
    return [rows, ids]


def export(path: str, fmt: str, out: str, overrides: list[str] | None = None,
           allow_plugins: list[str] | tuple[str, ...] = (), per_partition: bool = False) -> dict:
    """Write the export of the run at `path` into folder `out`; returns the manifest."""
    if fmt not in FORMATS:
        raise OptionError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if per_partition and fmt != "npy":
        raise OptionError(f"--per-partition writes npy files; got --format {fmt}")
    run = open_run(path, overrides, allow_plugins)
    dest = Path(out)
    dest.mkdir(parents=True, exist_ok=True)
    files: list[str] = []
    d = run.model.dimension
    try:
        if fmt == "tsv":
            with open(dest / "entities.tsv", "wb") as f:
                for t, tp in enumerate(run.layout.types):
                    names = _names(run, t)
                    for p in range(tp.num_partitions):
                        ids = pa.array(tp.members[p])
                        f.write(_tsv_block(names.take(ids), effective_rows(run, t, run.partition(t, p))))
            with open(dest / "relation_types.tsv", "w") as f:
                for name, side, kind, param, value in relation_rows(run):
                    shape = "x".join(map(str, value.shape))
                    vals = "\t".join(map(str, value.ravel()))  # float32: shortest round-trip text
                    f.write(f"{name}\t{side}\t{kind}\t{param}\t{shape}\t{vals}\n")
            files += ["entities.tsv", "relation_types.tsv"]
        elif fmt == "npy":
            for t, tp in enumerate(run.layout.types):
                if per_partition:
                    for p in range(tp.num_partitions):
                        files += write_partition(run, t, p, dest)
                    pq.write_table(pa.table({"name": _names(run, t)}), dest / f"{tp.name}_names.parquet")
                    files.append(f"{tp.name}_names.parquet")
                    continue
                table = np.lib.format.open_memmap(dest / f"{tp.name}.npy", "w+", np.float32, (tp.count, d))
                for p in range(tp.num_partitions):
                    table[tp.members[p]] = effective_rows(run, t, run.partition(t, p))
                table.flush()
                del table
                (dest / f"{tp.name}_names.json").write_text(json.dumps(_names(run, t).to_pylist()))
                files += [f"{tp.name}.npy", f"{tp.name}_names.json"]
            for side in ("lhs", "rhs") if run.model.reciprocal else ("rhs",):
                for kind, params in sorted(run.params[side].items()):  # every kind has R rows
                    for param, value in sorted(params.items()):
                        np.save(dest / f"{side}.{kind}.{param}.npy", np.asarray(value, np.float32))
                        files.append(f"{side}.{kind}.{param}.npy")
        else:
            for t, tp in enumerate(run.layout.types):
                names = _names(run, t)
                schema = pa.schema([("name", pa.string()), ("embedding", pa.list_(pa.float32(), d))])
                with pq.ParquetWriter(dest / f"{tp.name}.parquet", schema) as w:
                    for p in range(tp.num_partitions):
                        rows = effective_rows(run, t, run.partition(t, p))
                        emb = pa.FixedSizeListArray.from_arrays(pa.array(rows.ravel()), d)
                        w.write_table(pa.table({"name": names.take(pa.array(tp.members[p])),
                                                "embedding": emb}, schema=schema))
                files.append(f"{tp.name}.parquet")
            rel = list(relation_rows(run))
            pq.write_table(pa.table({
                "name": [r[0] for r in rel], "side": [r[1] for r in rel], "operator": [r[2] for r in rel],
                "param": [r[3] for r in rel], "shape": [list(r[4].shape) for r in rel],
                "values": pa.array([r[4].ravel() for r in rel], pa.list_(pa.float32())),
            }), dest / "relations.parquet")
            files.append("relations.parquet")
        if fmt == "npy":
            (dest / "relations.json").write_text(json.dumps(manifest(run, fmt, files)["relations"], indent=1))
            files.append("relations.json")
        man = manifest(run, fmt, files)
        (dest / "manifest.json").write_text(json.dumps(man, indent=1))
    finally:
        run.close()
    return man


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.cli.export", __doc__)
    run_arguments(p)
    p.add_argument("--format", default="tsv", choices=FORMATS)
    p.add_argument("--out", required=True, help="folder to write")
    p.add_argument("--per-partition", action="store_true",
                   help="npy: one file per partition (+ its ids), for tables larger than memory")
    a = p.parse_args(argv)
    man = export(a.run, a.format, a.out, a.set, a.allow_plugin, a.per_partition)
    n = sum(v["count"] for v in man["entity_types"].values())
    print(f"wrote {n:,} entities x {man['dimension']} and {len(man['relations'])} relations to {a.out}: "
          + ", ".join(man["files"]))
    return 0


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.export", main))
