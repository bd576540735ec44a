"""Streaming import: edge files (TSV/CSV, plain or gzip, Parquet) -> a prepared dataset.

    python -m jgraph.data.import data/fb15k237 --train train.tsv.gz --valid valid.tsv.gz --test test.tsv.gz
    python -m jgraph.data.import data/lj --train soc-LiveJournal1.txt.gz --skip-rows 4 \\
        --relation-name follow --test-fraction 0.25 --partitions 8
    python -m jgraph.data.import data/g --train edges.parquet --columns lhs=src rhs=dst weight=w

(`jgraph/data/import.py` is the `-m` entry; `import` is a Python keyword, so code imports this
module.) Memory is the dictionaries (about 40 bytes per entity) plus one block of input, whatever
the edge count. Four streaming passes:
  1. read: parse each file (pyarrow), check rows (jgraph/data/reader.py), map names to provisional
     ids in order of first appearance (jgraph/data/dictionary.py), append the ids to spill files
     and the new names to a names file; count relations.
  2. filter (only with min counts): relations below --relation-min-count go, then entities below
     --entity-min-count (counted over the edges of the kept relations); the kept ones keep their
     order. Entities are cut into partitions by jgraph.partition's seeded rule.
  3. bucket: each spilled edge -> final ids -> (partition, row) -> appended to its bucket's spill
     file; valid/test edges (given, or drawn by --valid/test-fraction, a hash of the row index and
     --split-seed) -> their split's spill file.
  4. write: buckets and splits into TensorStore a slice at a time, names to Parquet, dataset.json.
Everything is written under a staging folder beside OUT that is renamed to OUT at the very end
(dataset.json last), so an interrupted import leaves no dataset at OUT; a later import removes the
stale staging folder. Bad rows stop the import with file:line and the text, or with --skip-bad are
dropped, counted, printed and kept in dataset.json (`import.bad_rows`).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from jgraph.config import DEFAULT_ENTITY_TYPE
from jgraph.data.dataset import Edges
from jgraph.data.dictionary import NameDictionary
from jgraph.data.prepared import META, PreparedWriter
from jgraph.data.reader import BadRows, EdgeBatch, EdgeReader
from jgraph.data.tsv import DataError
from jgraph.partition import PartitionLayout
from jgraph.storage import kv

SPLITS = ("train", "valid", "test")
SPILL = (("lhs", np.int32), ("rel", np.int32), ("rhs", np.int32), ("weight", np.float32))


@dataclass
class ImportSpec:
    """What to import and how (the command line's options)."""

    out: str  # the prepared dataset: a path (staged, then renamed) or a kvstore URL
    train: list[str]
    valid: list[str] = field(default_factory=list)
    test: list[str] = field(default_factory=list)
    columns: list[str] | None = None  # roles by position, or role=name (Parquet); None: by count
    delimiter: str | None = None  # default: tab, or ',' for .csv
    skip_rows: int = 0
    relation_name: str = "edge"  # the relation of files without a rel column
    entity_type: str = DEFAULT_ENTITY_TYPE
    relation_types: dict[str, list[str]] = field(default_factory=dict)  # rel -> [lhs type, rhs type]
    partitions: dict[str, int] = field(default_factory=dict)  # type -> P ("*": every type)
    partition_seed: int = 0
    entity_min_count: int = 1
    relation_min_count: int = 1
    valid_fraction: float = 0.0
    test_fraction: float = 0.0
    split_seed: int = 0
    skip_bad: bool = False
    overwrite: bool = False
    name: str | None = None
    block_mb: int = 64  # input block per batch
    chunk_edges: int = 1 << 22  # edges per piece in passes 2-4
    tmp_dir: str | None = None  # spill files (default: inside the staging folder)


class _Spill:
    """Append-only raw column files of one split (provisional ids)."""

    def __init__(self, folder: Path, split: str) -> None:
        self.paths = {n: folder / f"{split}.{n}" for n, _ in SPILL}
        self.files = {n: open(p, "wb") for n, p in self.paths.items()}
        self.count = 0
        self.weighted = False

    def append(self, lhs, rel, rhs, weight) -> None:
        for (n, dt), data in zip(SPILL, (lhs, rel, rhs, weight), strict=True):
            np.asarray(data, dt).tofile(self.files[n])
        self.count += len(lhs)

    def close(self) -> None:
        for f in self.files.values():
            f.close()

    def pieces(self, size: int):
        for start in range(0, self.count, size):
            n = min(size, self.count - start)
            yield start, [np.fromfile(self.paths[name], dt, n, offset=start * np.dtype(dt).itemsize)
                          for name, dt in SPILL]


class _Reading:
    """Pass 1: dictionaries, relation counts, spills, names files."""

    def __init__(self, spec: ImportSpec, folder: Path) -> None:
        self.spec, self.folder = spec, folder
        self.types: list[str] = [spec.entity_type]
        self.ents: dict[str, NameDictionary] = {}
        self.names: dict[str, pa.ipc.RecordBatchStreamWriter] = {}
        self.rels = NameDictionary(1 << 10)
        self.rel_names: list[str] = []
        self.rel_types = np.zeros((0, 2), np.int64)
        self.rel_counts = np.zeros(0, np.int64)
        self.spills = {s: _Spill(folder, s) for s in SPLITS}
        self.bad = BadRows() if spec.skip_bad else None
        self.rows = 0
        self.weighted = {s: False for s in SPLITS}

    def _type(self, name: str) -> int:
        if name not in self.types:
            self.types.append(name)
        return self.types.index(name)

    def _entities(self, t: int, col: pa.Array) -> np.ndarray:
        name = self.types[t]
        if name not in self.ents:
            self.ents[name] = NameDictionary()
            schema = pa.schema([("name", pa.string())])
            self.names[name] = pa.ipc.new_stream(str(self.folder / f"names.{t}.arrow"), schema)
        ids, new = self.ents[name].encode(col)
        if new.size:
            self.names[name].write_batch(pa.record_batch([col.take(pa.array(new))], names=["name"]))
        return ids

    def _relations(self, batch: EdgeBatch) -> np.ndarray:
        if batch.rel is None:
            col = pa.array([self.spec.relation_name])
            ids, new = self.rels.encode(col)
            ids = np.zeros(len(batch), np.int64) + ids[0]
        else:
            col = batch.rel
            ids, new = self.rels.encode(col)
        if new.size:
            added = col.take(pa.array(new)).to_pylist()
            types = [[self._type(t) for t in self.spec.relation_types.get(r, [self.spec.entity_type] * 2)]
                     for r in added]
            self.rel_names += added
            self.rel_types = np.concatenate([self.rel_types, np.array(types, np.int64).reshape(-1, 2)])
            self.rel_counts = np.concatenate([self.rel_counts, np.zeros(len(added), np.int64)])
        self.rel_counts += np.bincount(ids, minlength=len(self.rel_names))
        return ids

    def read(self, split: str, path: str) -> None:
        s = self.spec
        reader = EdgeReader(path, s.columns, s.delimiter, s.skip_rows, s.block_mb << 20, bad=self.bad)
        spill = self.spills[split]
        has_w = "weight" in reader.roles
        self.weighted[split] |= has_w
        for batch in reader:
            rel = self._relations(batch)
            ends = []
            for side, col in ((0, batch.lhs), (1, batch.rhs)):
                types = self.rel_types[rel, side]
                if (types == types[0]).all():
                    ends.append(self._entities(int(types[0]), col))
                    continue
                ids = np.empty(len(batch), np.int64)
                for t in np.unique(types):
                    m = types == t
                    ids[m] = self._entities(int(t), col.filter(pa.array(m)))
                ends.append(ids)
            w = batch.weight if has_w else np.ones(len(batch), np.float32)
            spill.append(ends[0], rel, ends[1], w)
        self.rows += reader.rows_read

    def close(self) -> None:
        for s in self.spills.values():
            s.close()
        for w in self.names.values():
            w.close()


def _uniform(seed: int, index: np.ndarray) -> np.ndarray:
    """A uniform [0, 1) number per row index (splitmix64 of seed and index)."""
    x = (index.astype(np.uint64) + np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)) * np.uint64(1)
    x += np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _parse_partitions(values: list[str]) -> dict[str, int]:
    out = {}
    for v in values:
        name, _, p = v.rpartition("=")
        out[name or "*"] = int(p)
    return out


def _staging(spec: ImportSpec) -> tuple[str, Path, callable, callable]:
    """(where to write, spill folder, publish(), discard()) for the output location."""
    if "://" not in spec.out or kv.is_local(spec.out):
        out = Path(kv.local_path(spec.out) if "://" in spec.out else spec.out).absolute()
        if out.exists() and not spec.overwrite:
            raise DataError(f"{out} exists; pass --overwrite to replace it")
        out.parent.mkdir(parents=True, exist_ok=True)
        for stale in out.parent.glob(f".{out.name}.importing-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted import
        stage = out.parent / f".{out.name}.importing-{os.getpid()}"
        stage.mkdir()
        spill = Path(tempfile.mkdtemp(dir=spec.tmp_dir)) if spec.tmp_dir else stage / "_spill"
        spill.mkdir(exist_ok=True)

        def publish() -> None:
            shutil.rmtree(spill, ignore_errors=True)
            old = None
            if out.exists():
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                os.rename(out, old)
            os.rename(stage, out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)

        def discard() -> None:
            shutil.rmtree(spill, ignore_errors=True)
            shutil.rmtree(stage, ignore_errors=True)

        return str(stage), spill, publish, discard
    import tensorstore as ts

    store = kv.open_kvstore(kv.base_url(spec.out), ts.Context())
    if store.read(META).result().state == "value":
        if not spec.overwrite:
            raise DataError(f"{spec.out} holds a dataset; pass --overwrite to replace it")
        store.delete(META).result()  # unreadable from now until the new one is finished
    spill = Path(tempfile.mkdtemp(dir=spec.tmp_dir, prefix="jgraph-import-"))
    return spec.out, spill, lambda: shutil.rmtree(spill, ignore_errors=True), \
        lambda: shutil.rmtree(spill, ignore_errors=True)


def run_import(spec: ImportSpec, log=print) -> dict:
    """Import as `spec` says; returns the statistics also saved in dataset.json under `import`."""
    if not spec.train:
        raise DataError("--train: at least one file")
    if (spec.valid and spec.valid_fraction) or (spec.test and spec.test_fraction):
        raise DataError("give valid/test files or a valid/test fraction, not both")
    if spec.valid_fraction + spec.test_fraction >= 1:
        raise DataError("--valid-fraction + --test-fraction must be < 1")
    for f in [*spec.train, *spec.valid, *spec.test]:
        if not os.path.isfile(f):
            raise DataError(f"{f}: no such file")
    location, folder, publish, discard = _staging(spec)
    try:
        stats = _import(spec, location, folder, log)
    except BaseException:
        discard()
        raise
    publish()
    return stats


def _import(spec: ImportSpec, location: str, folder: Path, log) -> dict:
    t0 = time.perf_counter()
    times = {}
    reading = _Reading(spec, folder)
    try:
        for split in SPLITS:
            for path in getattr(spec, split):
                reading.read(split, path)
                log(f"read {path}: {reading.spills[split].count:,} {split} edges so far, "
                    f"{sum(len(d) for d in reading.ents.values()):,} entities, "
                    f"{len(reading.rel_names):,} relations ({time.perf_counter() - t0:.1f}s)")
    finally:
        reading.close()
    times["read"] = time.perf_counter() - t0
    if reading.bad is not None and reading.bad.count:
        log(f"skipped {reading.bad.count:,} bad rows (--skip-bad), e.g.:")
        for e in reading.bad.examples[:5]:
            log(f"  {e}")

    # ---- pass 2: filters, final ids, partitions
    t1 = time.perf_counter()
    rel_keep = reading.rel_counts >= spec.relation_min_count
    if not rel_keep.any():
        raise DataError(f"no relation has >= {spec.relation_min_count} edges")
    rel_map = np.where(rel_keep, np.cumsum(rel_keep) - 1, -1)
    rel_types_kept = reading.rel_types[rel_keep]
    used = sorted(set(rel_types_kept.ravel().tolist()))
    types = [reading.types[t] for t in used]
    type_index = np.full(len(reading.types), -1, np.int64)
    type_index[used] = np.arange(len(used))
    new_rel_types = type_index[rel_types_kept]
    keep = {t: np.ones(len(reading.ents.get(reading.types[t], ())), bool) for t in used}
    if spec.entity_min_count > 1:
        counts = {t: np.zeros(len(keep[t]), np.int64) for t in used}
        for s in SPLITS:
            for _, (lhs, rel, rhs, _w) in reading.spills[s].pieces(spec.chunk_edges):
                ok = rel_keep[rel]
                for side, ids in ((0, lhs), (1, rhs)):
                    t_of = reading.rel_types[rel, side]
                    for t in used:
                        m = ok & (t_of == t)
                        counts[t] += np.bincount(ids[m], minlength=len(counts[t]))
        keep = {t: counts[t] >= spec.entity_min_count for t in used}
    ent_map = {t: np.where(k, np.cumsum(k) - 1, -1) for t, k in keep.items()}
    entity_counts = {reading.types[t]: int(k.sum()) for t, k in keep.items()}
    parts = {t: spec.partitions.get(t, spec.partitions.get("*", 1)) for t in types}
    layout = PartitionLayout.build(entity_counts, parts, spec.partition_seed)
    tp = {t: layout.types[types.index(reading.types[t])] for t in used}
    part_of = {t: np.where(m >= 0, tp[t].part_of[np.maximum(m, 0)], -1) if len(m) else m
               for t, m in ent_map.items()}
    row_of = {t: np.where(m >= 0, tp[t].offset_of[np.maximum(m, 0)], -1) if len(m) else m
              for t, m in ent_map.items()}
    relations = [{"name": n, "lhs": types[a], "rhs": types[b]}
                 for n, (a, b) in zip([n for n, k in zip(reading.rel_names, rel_keep, strict=True) if k],
                                      new_rel_types.tolist(), strict=True)]
    times["filter"] = time.perf_counter() - t1
    log(f"kept {sum(entity_counts.values()):,} of {sum(len(k) for k in keep.values()):,} entities, "
        f"{len(relations):,} of {len(rel_keep):,} relations; partitions "
        + ", ".join(f"{t}: {p}" for t, p in parts.items()))

    # ---- pass 3: buckets and split files
    t2 = time.perf_counter()
    writer = PreparedWriter(location, name=spec.name or Path(spec.out.rstrip("/")).name,
                            entity_counts=entity_counts, partitions=parts,
                            partition_seed=spec.partition_seed, relations=relations,
                            weight=reading.weighted["train"])
    n_l, n_r = writer.train.n_lhs, writer.train.n_rhs
    rec = np.dtype([("lhs", "<i4"), ("rhs", "<i4"), ("rel", "<i4"), ("weight", "<f4")])
    out_rec = np.dtype([("lhs", "<i8"), ("rhs", "<i8"), ("rel", "<i4"), ("weight", "<f4")])
    counts = {"dropped": 0, "train": 0, "valid": 0, "test": 0}
    bucket_files = {}
    split_files = {s: folder / f"out.{s}" for s in ("valid", "test")}
    fractions = {"valid": spec.valid_fraction, "test": spec.test_fraction}
    for s in SPLITS:
        for start, (lhs, rel, rhs, w) in reading.spills[s].pieces(spec.chunk_edges):
            r = rel_map[rel]
            ok = r >= 0
            ends, parts_, rows = [], [], []
            for side, ids in ((0, lhs), (1, rhs)):
                t_of = reading.rel_types[rel, side]
                e = np.full(len(ids), -1, np.int64)
                pp = np.zeros(len(ids), np.int64)
                rr = np.zeros(len(ids), np.int64)
                for t in used:
                    m = t_of == t
                    if m.all():
                        e, pp, rr = ent_map[t][ids], part_of[t][ids], row_of[t][ids]
                    elif m.any():
                        e[m], pp[m], rr[m] = ent_map[t][ids[m]], part_of[t][ids[m]], row_of[t][ids[m]]
                ends.append(e)
                parts_.append(pp)
                rows.append(rr)
                ok &= e >= 0
            counts["dropped"] += int((~ok).sum())
            dest = np.full(len(lhs), 0 if s == "train" else SPLITS.index(s), np.int8)
            if s == "train" and (spec.valid_fraction or spec.test_fraction):
                u = _uniform(spec.split_seed, np.arange(start, start + len(lhs)))
                dest[u < spec.valid_fraction + spec.test_fraction] = 2
                dest[u < spec.valid_fraction] = 1
            for d, split in ((1, "valid"), (2, "test")):
                m = ok & (dest == d)
                if m.any() or fractions[split] or getattr(spec, split):
                    out = np.empty(int(m.sum()), out_rec)
                    out["lhs"], out["rhs"], out["rel"], out["weight"] = ends[0][m], ends[1][m], r[m], w[m]
                    with open(split_files[split], "ab") as f:
                        out.tofile(f)
                    counts[split] += len(out)
            m = ok & (dest == 0)
            bucket = parts_[0][m] * n_r + parts_[1][m]
            order = np.argsort(bucket.astype(np.uint16 if n_l * n_r < 65536 else np.int64), kind="stable")
            out = np.empty(len(order), rec)
            out["lhs"], out["rhs"] = rows[0][m][order], rows[1][m][order]
            out["rel"], out["weight"] = r[m][order], w[m][order]
            bounds = np.concatenate([[0], np.cumsum(np.bincount(bucket, minlength=n_l * n_r))])
            for b in np.flatnonzero(np.diff(bounds)):
                path = bucket_files.setdefault(int(b), folder / f"bucket.{b}")
                with open(path, "ab") as f:
                    out[bounds[b] : bounds[b + 1]].tofile(f)
            counts["train"] += len(out)
    for s in reading.spills.values():
        for p in s.paths.values():
            p.unlink()
    times["bucket"] = time.perf_counter() - t2

    # ---- pass 4: TensorStore, names, dataset.json
    t3 = time.perf_counter()
    size = spec.chunk_edges
    for b, path in sorted(bucket_files.items()):
        n = path.stat().st_size // rec.itemsize

        def pieces(path=path, n=n):
            for start in range(0, n, size):
                x = np.fromfile(path, rec, min(size, n - start), offset=start * rec.itemsize)
                yield x["lhs"], x["rhs"], x["rel"], x["weight"] if writer.train.weight else None

        writer.train.write_pieces(divmod(b, n_r), n, pieces())
        path.unlink()
    for split, path in split_files.items():
        if not path.exists():
            continue
        n = path.stat().st_size // out_rec.itemsize

        def edges(path=path, n=n):
            for start in range(0, n, size):
                x = np.fromfile(path, out_rec, min(size, n - start), offset=start * out_rec.itemsize)
                yield Edges(x["lhs"], x["rhs"], x["rel"], x["weight"])

        weighted = reading.weighted[split] or (reading.weighted["train"] and bool(fractions[split]))
        writer.write_split_pieces(split, n, edges(), weighted)
        path.unlink()
    for t in used:
        name = reading.types[t]

        def names(t=t, name=name):
            with pa.ipc.open_stream(str(folder / f"names.{t}.arrow")) as r:
                start = 0
                for batch in r:
                    col = batch.column(0)
                    k = keep[t][start : start + len(col)]
                    start += len(col)
                    yield col if k.all() else col.filter(pa.array(k))

        writer.write_names_batches(name, names())
    times["write"] = time.perf_counter() - t3
    total = time.perf_counter() - t0
    stats = {
        "sources": {s: list(getattr(spec, s)) for s in SPLITS if getattr(spec, s)},
        "rows_read": reading.rows,
        "bad_rows": reading.bad.count if reading.bad else 0,
        "bad_examples": reading.bad.examples if reading.bad else [],
        "dropped_by_min_count": counts["dropped"],
        "edges": {s: counts[s] for s in SPLITS},
        "entities_seen": {reading.types[t]: len(keep[t]) for t in used},
        "relations_seen": len(rel_keep),
        "seconds": {**times, "total": total},
        "rows_per_second": reading.rows / max(total, 1e-9),
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "spec": {k: v for k, v in asdict(spec).items() if k not in ("out", "tmp_dir")},
    }
    writer.meta["import"] = stats
    writer.finish()
    log(f"imported {reading.rows:,} rows in {total:.1f}s ({stats['rows_per_second'] / 1e6:.2f}M rows/s; "
        + ", ".join(f"{k} {v:.1f}s" for k, v in times.items())
        + f"): train {counts['train']:,}, valid {counts['valid']:,}, test {counts['test']:,} edges; "
        f"dropped {counts['dropped']:,}, bad {stats['bad_rows']:,}; peak RSS {stats['peak_rss_mib']:.0f} MiB")
    return stats


def _delimiter(s: str | None) -> str | None:
    if s is None:
        return None
    return {"\\t": "\t", "tab": "\t", "space": " ", "comma": ","}.get(s, s)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m jgraph.data.import", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", help="the prepared dataset to write (train with data.format=prepared "
                   "data.root=<its folder> data.path=<its name>)")
    p.add_argument("--train", nargs="+", required=True, help="edge files (TSV/CSV, .gz, Parquet)")
    p.add_argument("--valid", nargs="+", default=[])
    p.add_argument("--test", nargs="+", default=[])
    p.add_argument("--columns", nargs="+", default=None,
                   help="role of each column: lhs rel rhs weight ignore (default by count: 2 = lhs rhs, "
                   "3 = lhs rel rhs, 4 = + weight), or role=name for Parquet")
    p.add_argument("--delimiter", default=None, help="default: tab (',' for .csv); \\t, tab, space")
    p.add_argument("--skip-rows", type=int, default=0, help="header/comment lines of each text file")
    p.add_argument("--relation-name", default="edge", help="the relation of files without a rel column")
    p.add_argument("--entity-type", default=DEFAULT_ENTITY_TYPE)
    p.add_argument("--relation-types", default=None, metavar="JSON",
                   help='file: {"rel": ["lhs_type", "rhs_type"], ...}; others use --entity-type')
    p.add_argument("--partitions", nargs="+", default=["1"], metavar="[TYPE=]P")
    p.add_argument("--partition-seed", type=int, default=0)
    p.add_argument("--entity-min-count", type=int, default=1)
    p.add_argument("--relation-min-count", type=int, default=1)
    p.add_argument("--valid-fraction", type=float, default=0.0)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--skip-bad", action="store_true", help="drop and count malformed rows")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--name", default=None, help="dataset name (default: OUT's last part)")
    p.add_argument("--block-mb", type=int, default=64, help="input read per batch")
    p.add_argument("--tmp-dir", default=None, help="spill files (default: beside OUT)")
    a = p.parse_args(argv)
    rel_types = {}
    if a.relation_types:
        raw = json.loads(Path(a.relation_types).read_text())
        items = raw.items() if isinstance(raw, dict) else ((r["name"], r) for r in raw)
        for name, v in items:
            rel_types[name] = [v["lhs"], v["rhs"]] if isinstance(v, dict) else list(v)
    spec = ImportSpec(
        out=a.out, train=a.train, valid=a.valid, test=a.test, columns=a.columns,
        delimiter=_delimiter(a.delimiter), skip_rows=a.skip_rows, relation_name=a.relation_name,
        entity_type=a.entity_type, relation_types=rel_types, partitions=_parse_partitions(a.partitions),
        partition_seed=a.partition_seed, entity_min_count=a.entity_min_count,
        relation_min_count=a.relation_min_count, valid_fraction=a.valid_fraction,
        test_fraction=a.test_fraction, split_seed=a.split_seed, skip_bad=a.skip_bad,
        overwrite=a.overwrite, name=a.name, block_mb=a.block_mb, tmp_dir=a.tmp_dir)
    try:
        run_import(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    except DataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0

