"""Streaming import: edge files (TSV/CSV, plain or gzip, Parquet) -> a prepared dataset.

    python -m jgraph.cli.import_edges data/fb15k237 --train train.tsv.gz --valid valid.tsv.gz \\
        --test test.tsv.gz
    python -m jgraph.cli.import_edges data/lj --train soc-LiveJournal1.txt.gz --skip-rows 4 \\
        --relation-name follow --test-fraction 0.25 --partitions 8
    python -m jgraph.cli.import_edges data/g --train edges.parquet --columns lhs=src rhs=dst weight=w

(jgraph/cli/import_edges.py is the command line; code calls `run_import(ImportSpec(...))`.) Memory is
the dictionaries (32 bytes a hash slot, 64-128 bytes per entity, jgraph/data/dictionary.py) plus a
fixed buffer (a few input blocks, a few pieces of spilled edges), whatever the edge count. The hot
loops are compiled (numba) and release the GIL, so each pass keeps both cores busy. Four passes:
  1. read: parse each file (pyarrow; two threads parse, check and hash the names of alternate
     blocks), map names to provisional ids in order of first appearance (head, tail, row by row),
     append the ids to spill files (no weight file for unweighted input) and new names to a names
     file; count relations.
  2. plan: relations below --relation-min-count go, then entities below --entity-min-count
     (counted over the edges of the kept relations); the kept ones keep their order as ids. Each
     entity's partition and row follow jgraph.plan.partition's seeded rule (--partition-seed).
  3. bucket: spilled edges -> final ids -> (partition, row) -> their bucket's spill file (two
     threads place pieces, a counting sort by bucket; appended in order);
     valid/test edges (given, or drawn by --valid/test-fraction from a hash of the row index and
     --split-seed, so the split does not depend on batch sizes) -> their split's spill file.
  4. write: buckets (two at a time) and splits into TensorStore a piece at a time, names into
     Parquet, an fsync, then dataset.json; the staging folder is renamed to OUT
     (jgraph/data/spill.py), so an interrupted import leaves no dataset at OUT.
Bad rows stop the import with file:line and the text, or with --skip-bad are dropped, counted,
printed and kept in dataset.json (`import.bad_rows`, `import.bad_examples`).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jgraph.config import DEFAULT_ENTITY_TYPE
from jgraph.data.dataset import Edges
from jgraph.data.dictionary import NameDictionary, hash_of, keys_of
from jgraph.data.import_plan import Plan, split_uniform
from jgraph.data.pipeline import ordered_map
from jgraph.data.prepared import META, PreparedWriter
from jgraph.data.reader import BadRows, EdgeBatch, EdgeReader
from jgraph.data.spill import ColumnSpill, RecordSpill, Staging
from jgraph.errors import DataError
from jgraph.memory import peak_rss_mib

SPLITS = ("train", "valid", "test")
SPILL = (("lhs", np.int32), ("rel", np.int32), ("rhs", np.int32), ("weight", np.float32))
BUCKET_REC = np.dtype([("lhs", "<i4"), ("rhs", "<i4"), ("rel", "<i4")])  # unweighted: no weight
BUCKET_REC_W = np.dtype([("lhs", "<i4"), ("rhs", "<i4"), ("rel", "<i4"), ("weight", "<f4")])
SPLIT_REC = np.dtype([("lhs", "<i8"), ("rhs", "<i8"), ("rel", "<i4"), ("weight", "<f4")])


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
    block_bytes: int = 16 << 20  # input read per batch
    chunk_edges: int = 1 << 20  # edges per piece in passes 2-4
    tmp_dir: str | None = None  # spill files (default: inside the staging folder)
    sync: bool = True  # fsync the dataset's files once before it is published
    dictionary_load: float = 0.5  # name dictionaries' max load (dictionary.NameDictionary)



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
        self.spills = {s: ColumnSpill(folder, s, SPILL, {"weight": 1.0}) for s in SPLITS}
        self.bad = BadRows() if spec.skip_bad else None
        self.rows = 0
        self.weighted = {s: False for s in SPLITS}

    def _type(self, name: str) -> int:
        if name not in self.types:
            self.types.append(name)
        return self.types.index(name)

    def _entities(self, t: int, batch: EdgeBatch, keys: np.ndarray, hashes: np.ndarray,
                  where: np.ndarray | None = None) -> np.ndarray:
        """Ids of type t's names at positions `where` (None: all) of the batch's names interleaved
        row by row (head, tail, head, ...); new names are appended to the type's names file."""
        name = self.types[t]
        if name not in self.ents:
            self.ents[name] = NameDictionary(max_load=self.spec.dictionary_load)
            schema = pa.schema([("name", pa.string())])
            self.names[name] = pa.ipc.new_stream(str(self.folder / f"names.{t}.arrow"), schema)
        if where is None:
            ids, new = self.ents[name].encode_keys(keys, hashes=hashes)
        else:
            ids, new = self.ents[name].encode_keys(keys[where], hashes=hashes[where])
        if new.size:
            pos = new if where is None else where[new]
            both = pa.concat_arrays([batch.lhs, batch.rhs])
            taken = both.take(pa.array((pos % 2) * len(batch) + pos // 2))
            self.names[name].write_batch(pa.record_batch([taken], names=["name"]))
        return ids

    def _relations(self, batch: EdgeBatch, rel: tuple | None) -> np.ndarray:
        """Relation ids of a batch; `rel` = (dictionary, its keys, indices) of the rel column."""
        if rel is None:
            col = pa.array([self.spec.relation_name])
            ids, new = self.rels.encode(col)
            ids = np.zeros(len(batch), np.int64) + ids[0]
        else:
            col, keys, index = rel
            ids, new = self.rels.encode_keys(keys)
            ids = ids[index]
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
        reader = EdgeReader(path, s.columns, s.delimiter, s.skip_rows, s.block_bytes, bad=self.bad)
        spill = self.spills[split]
        has_w = "weight" in reader.roles
        self.weighted[split] |= has_w

        def prepare(batch: EdgeBatch):  # in the reader's threads, which also parse and check
            rel = None
            if batch.rel is not None:  # few relations: hashed once a batch
                enc = batch.rel if pa.types.is_dictionary(batch.rel.type) else pc.dictionary_encode(batch.rel)
                rel = (enc.dictionary, keys_of(enc.dictionary), enc.indices.to_numpy(zero_copy_only=False))
            keys = np.empty(2 * len(batch), np.complex128)  # heads and tails interleaved: ids are
            keys[0::2], keys[1::2] = keys_of(batch.lhs), keys_of(batch.rhs)  # given in order of first
            return batch, rel, keys, hash_of(keys)  # appearance, row by row

        for batch, k_rel, keys, hashes in reader.batches(prepare):
            n = len(batch)
            rel = self._relations(batch, k_rel)
            lt, rt = self.rel_types[:, 0][rel], self.rel_types[:, 1][rel]
            if (lt == lt[0]).all() and (rt == lt[0]).all():
                ids = self._entities(int(lt[0]), batch, keys, hashes)
            else:
                types = np.empty(2 * n, np.int64)
                types[0::2], types[1::2] = lt, rt
                ids = np.empty(2 * n, np.int64)
                for t in np.unique(types):
                    where = np.flatnonzero(types == t)
                    ids[where] = self._entities(int(t), batch, keys, hashes, where)
            ends = [ids[0::2], ids[1::2]]
            spill.append(ends[0], rel, ends[1], batch.weight if has_w else None)
        self.rows += reader.rows_read

    def close(self) -> None:
        for s in self.spills.values():
            s.close()
        for w in self.names.values():
            w.close()


@numba.njit(nogil=True, cache=True)
def _scatter_by_bucket(place0, place1, rel, weight_bits, n_r, n_buckets, out):
    """Edges in bucket order (stable), as records out[k] = (row of lhs, row of rhs, rel[, weight
    bits]); place = partition << 32 | row. Returns bounds [n_buckets + 1] of the buckets in out."""
    n = len(place0)
    bucket = np.empty(n, np.int64)
    bounds = np.zeros(n_buckets + 1, np.int64)
    for i in range(n):
        b = (place0[i] >> 32) * n_r + (place1[i] >> 32)
        bucket[i] = b
        bounds[b + 1] += 1
    for b in range(n_buckets):
        bounds[b + 1] += bounds[b]
    at = bounds[:-1].copy()
    for i in range(n):
        k = at[bucket[i]]
        at[bucket[i]] = k + 1
        out[k, 0] = place0[i] & 0xFFFFFFFF
        out[k, 1] = place1[i] & 0xFFFFFFFF
        out[k, 2] = rel[i]
        if len(weight_bits):
            out[k, 3] = weight_bits[i]
    return bounds


def _bucket_pass(spec: ImportSpec, reading: _Reading, plan: Plan, n_r: int, n_buckets: int,
                 folder: Path) -> tuple[dict[int, RecordSpill], dict[str, RecordSpill], dict[str, int]]:
    """Pass 3: spilled edges -> bucket record files (train) and split record files (valid/test).
    Pieces are placed by two worker threads while this one reads the next and appends the placed
    records (in piece order, so each bucket keeps the input's edge order)."""
    buckets: dict[int, RecordSpill] = {}
    splits = {s: RecordSpill(folder / f"out.{s}", SPLIT_REC) for s in ("valid", "test")}
    counts = {"dropped": 0, "train": 0, "valid": 0, "test": 0}
    fractions = {"valid": spec.valid_fraction, "test": spec.test_fraction}
    weighted = reading.weighted["train"]
    rec = BUCKET_REC_W if weighted else BUCKET_REC

    def place(item):  # in a worker thread: pure, no appends
        s, start, (lhs, rel, rhs, w) = item
        dropped, split_out = 0, {}
        r = plan.rel_map[rel] if plan.filtered else rel
        places = [plan.lookup(plan.place, reading.rel_types, side, rel, ids)
                  for side, ids in ((0, lhs), (1, rhs))]
        ok = (r >= 0) & (places[0] >= 0) & (places[1] >= 0) if plan.filtered else None
        if ok is not None:
            dropped = int((~ok).sum())
        dest = None if s == "train" else np.full(len(lhs), SPLITS.index(s), np.int8)
        if s == "train" and (spec.valid_fraction or spec.test_fraction):
            u = split_uniform(spec.split_seed, np.arange(start, start + len(lhs)))
            dest = np.zeros(len(lhs), np.int8)
            dest[u < spec.valid_fraction + spec.test_fraction] = 2
            dest[u < spec.valid_fraction] = 1
        for d, split in ((1, "valid"), (2, "test")):
            if dest is None or not (fractions[split] or getattr(spec, split)):
                continue
            m = dest == d if ok is None else ok & (dest == d)
            out = np.empty(int(m.sum()), SPLIT_REC)
            out["lhs"] = plan.lookup(plan.ent_map, reading.rel_types, 0, rel[m], lhs[m])
            out["rhs"] = plan.lookup(plan.ent_map, reading.rel_types, 1, rel[m], rhs[m])
            out["rel"], out["weight"] = r[m], w[m]
            split_out[split] = out
        if dest is not None or ok is not None:
            m = dest == 0 if ok is None else ok if dest is None else ok & (dest == 0)
            places, r, w = [p[m] for p in places], r[m], w[m]
        out = np.empty((len(r), rec.itemsize // 4), np.int32)
        bounds = _scatter_by_bucket(places[0], places[1], r.astype(np.int32, copy=False),
                                    w.view(np.int32) if weighted else np.zeros(0, np.int32),
                                    n_r, n_buckets, out)
        return dropped, split_out, out.view(rec).reshape(-1), bounds

    pieces = ((s, start, cols) for s in SPLITS for start, cols in reading.spills[s].pieces(spec.chunk_edges))
    for dropped, split_out, out, bounds in ordered_map(place, pieces):
        counts["dropped"] += dropped
        for split, records in split_out.items():
            splits[split].append(records)
            counts[split] += len(records)
        for b in np.flatnonzero(np.diff(bounds)):
            if b not in buckets:
                buckets[int(b)] = RecordSpill(folder / f"bucket.{b}", rec)
            buckets[int(b)].append(out[bounds[b] : bounds[b + 1]])
        counts["train"] += len(out)
    for s in SPLITS:
        reading.spills[s].remove()
    return buckets, splits, counts


def _write_pass(spec: ImportSpec, reading: _Reading, plan: Plan, writer: PreparedWriter,
                buckets: dict[int, RecordSpill], splits: dict[str, RecordSpill], folder: Path,
                staging_fresh: bool) -> None:
    """Pass 4: bucket and split spills into TensorStore a piece at a time, names into Parquet."""
    size, weighted = spec.chunk_edges, writer.train.weight

    def write_bucket(item: tuple[int, RecordSpill]) -> None:
        b, spill = item
        pieces = ((x["lhs"], x["rhs"], x["rel"], x["weight"] if weighted else None)
                  for _, x in spill.pieces(size))
        writer.train.write_pieces(divmod(b, writer.train.n_rhs), spill.count, pieces, fresh=staging_fresh)
        spill.remove()

    for _ in ordered_map(write_bucket, sorted(buckets.items())):  # two buckets at a time
        pass
    for split, spill in splits.items():
        fraction = spec.valid_fraction if split == "valid" else spec.test_fraction
        if not (getattr(spec, split) or fraction):
            continue
        edges = (Edges(x["lhs"], x["rhs"], x["rel"], x["weight"]) for _, x in spill.pieces(size))
        w = reading.weighted[split] or (reading.weighted["train"] and bool(fraction))
        writer.write_split_pieces(split, spill.count, edges, w, fresh=staging_fresh)
        spill.remove()
    for t in plan.used:
        keep = plan.keep[t]

        def names(t=t, keep=keep):
            with pa.ipc.open_stream(str(folder / f"names.{t}.arrow")) as r:
                start = 0
                for batch in r:
                    col = batch.column(0)
                    k = keep[start : start + len(col)]
                    start += len(col)
                    yield col if k.all() else col.filter(pa.array(k))

        writer.write_names_batches(reading.types[t], names())


def run_import(spec: ImportSpec, log=print) -> dict:
    """Import as `spec` says; returns the statistics also saved in dataset.json under `import`."""
    if not spec.train:
        raise DataError("--train: at least one file")
    if (spec.valid and spec.valid_fraction) or (spec.test and spec.test_fraction):
        raise DataError("give valid/test files or a valid/test fraction, not both")
    if spec.valid_fraction + spec.test_fraction >= 1:
        raise DataError("--valid-fraction + --test-fraction must be < 1")
    for name, value, low in (("--valid-fraction", spec.valid_fraction, 0),
                             ("--test-fraction", spec.test_fraction, 0),
                             ("--entity-min-count", spec.entity_min_count, 1),
                             ("--relation-min-count", spec.relation_min_count, 1),
                             *((f"--partitions {'' if t == '*' else t + '='}P", p, 1)
                               for t, p in spec.partitions.items())):
        if value < low:
            raise DataError(f"{name} must be >= {low}, got {value}")
    for f in [*spec.train, *spec.valid, *spec.test]:
        if not os.path.isfile(f):
            raise DataError(f"{f}: no such file")
    staging = Staging(spec.out, spec.overwrite, spec.tmp_dir, META, spec.sync)
    try:
        stats = _import(spec, staging, log)
    except BaseException:
        staging.discard()
        raise
    staging.publish()
    return stats


def _import(spec: ImportSpec, staging: Staging, log) -> dict:
    t0 = time.perf_counter()
    times = {}
    folder = staging.spill
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
    t1 = time.perf_counter()
    plan = Plan(spec, reading)
    times["filter"] = time.perf_counter() - t1
    log(f"kept {sum(plan.entity_counts.values()):,} of {sum(len(k) for k in plan.keep.values()):,} "
        f"entities, {len(plan.relations):,} of {len(plan.rel_keep):,} relations; partitions "
        + ", ".join(f"{t}: {p}" for t, p in plan.parts.items()))
    t2 = time.perf_counter()
    writer = PreparedWriter(staging.location, name=spec.name or Path(spec.out.rstrip("/")).name,
                            entity_counts=plan.entity_counts, partitions=plan.parts,
                            partition_seed=spec.partition_seed, relations=plan.relations,
                            weight=reading.weighted["train"], context=staging.context())
    n_r = writer.train.n_rhs
    buckets, splits, counts = _bucket_pass(spec, reading, plan, n_r, writer.train.n_lhs * n_r, folder)
    times["bucket"] = time.perf_counter() - t2
    t3 = time.perf_counter()
    _write_pass(spec, reading, plan, writer, buckets, splits, folder, staging.local)
    times["write"] = time.perf_counter() - t3
    t4 = time.perf_counter()
    staging.sync_all()
    times["sync"] = time.perf_counter() - t4
    total = time.perf_counter() - t0
    stats = {
        "sources": {s: list(getattr(spec, s)) for s in SPLITS if getattr(spec, s)},
        "rows_read": reading.rows,
        "bad_rows": reading.bad.count if reading.bad else 0,
        "bad_examples": reading.bad.examples if reading.bad else [],
        "dropped_by_min_count": counts["dropped"],
        "edges": {s: counts[s] for s in SPLITS},
        "entities_seen": {reading.types[t]: len(plan.keep[t]) for t in plan.used},
        "relations_seen": len(plan.rel_keep),
        "seconds": {**times, "total": total},
        "rows_per_second": reading.rows / max(total, 1e-9),
        "peak_rss_mib": peak_rss_mib(),
        "spec": {k: v for k, v in asdict(spec).items() if k not in ("out", "tmp_dir")},
    }
    writer.meta["import"] = stats
    writer.finish()
    log(f"imported {reading.rows:,} rows in {total:.1f}s ({stats['rows_per_second'] / 1e6:.2f}M rows/s; "
        + ", ".join(f"{k} {v:.1f}s" for k, v in times.items())
        + f"): train {counts['train']:,}, valid {counts['valid']:,}, test {counts['test']:,} edges; "
        f"dropped {counts['dropped']:,}, bad {stats['bad_rows']:,}; peak RSS {stats['peak_rss_mib']:.0f} MiB")
    return stats
