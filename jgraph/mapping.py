"""A run's name mapping, kept beside its checkpoint so a trained run needs no data files to load,
score, predict, export or find neighbours (only to evaluate on a split).

Layout under the checkpoint location (beside checkpoint.json; the checkpoint's clean-up never
touches it):
    names/{i}.parquet    entity names of the i-th entity type, id order (one column `name`)
    mapping.json         written last: entity types and counts, relation names and (lhs, rhs) types,
                         partitions and their seed, the dataset's name, and `hash`: the content hash
                         of the names (entity names in id order, relation names), checked against
                         the data on resume and whenever a tool reads the data again
A reordered train.tsv gives other ids (names are numbered in order of first appearance), so its hash
differs and training or evaluation stops with a one-line error instead of reassigning embeddings.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jgraph.config import TrainConfig
from jgraph.data.dataset import Dataset
from jgraph.errors import DataError
from jgraph.storage import kv
from jgraph.storage.checkpoint import CheckpointError

MAPPING = "mapping.json"
FORMAT = 2  # 2: names hashed as two streams (lengths, bytes), batch-invariant


def entity_names(cfg: TrainConfig, ds: Dataset, entity_type: str) -> pa.Array | None:
    """Names of one entity type in id order: the dataset's, or a prepared dataset's names file
    (None when it keeps none: the ids are the names)."""
    names = ds.entity_names.get(entity_type)
    if names is None and cfg.data.format == "prepared":
        from jgraph.data.prepared import dataset_location, load_names

        try:
            names = load_names(dataset_location(cfg.data), entity_type)
        except DataError:
            return None
        ds.entity_names[entity_type] = names
    return names


def name_batches(cfg: TrainConfig, ds: Dataset, entity_type: str) -> Iterator[pa.Array] | None:
    """The names of one entity type in id order, a batch at a time (a prepared dataset's names file
    is streamed, not loaded); None when the data keeps no names."""
    names = ds.entity_names.get(entity_type)
    if names is not None:
        return iter([names])
    if cfg.data.format != "prepared":
        return None
    from jgraph.data.prepared import dataset_location

    url = kv.base_url(dataset_location(cfg.data))
    key = f"names/{entity_type}.parquet"
    if kv.is_local(url):
        path = os.path.join(kv.local_path(url), key)
        if not os.path.isfile(path):
            return None
        source = pq.ParquetFile(path)
    else:
        raw = kv.read_object(kv.base_url(url), key)
        if raw is None:
            return None
        source = pq.ParquetFile(io.BytesIO(raw))
    return (b.column(0) for b in source.iter_batches(batch_size=1 << 20, columns=["name"]))


class NamesHash:
    """sha256 of a sequence of strings, the same however they are cut into batches: the string
    lengths and the string bytes are hashed as two streams."""

    def __init__(self) -> None:
        self.count = 0
        self.lengths = hashlib.sha256()
        self.data = hashlib.sha256()

    def update(self, arr: pa.Array) -> None:
        if isinstance(arr, pa.ChunkedArray):
            arr = arr.combine_chunks()
        if not len(arr):
            return
        a = arr.cast(pa.large_string())
        offsets = np.frombuffer(a.buffers()[1], np.int64)[a.offset : a.offset + len(a) + 1]
        self.lengths.update(np.diff(offsets).tobytes())
        if offsets[-1] > offsets[0]:
            self.data.update(memoryview(a.buffers()[2])[offsets[0] : offsets[-1]])
        self.count += len(a)

    def hexdigest(self) -> str:
        return hashlib.sha256(f"{self.count}:{self.lengths.hexdigest()}:{self.data.hexdigest()}".encode()
                              ).hexdigest()


def _digest(ds: Dataset, per_type: list[str]) -> str:
    """The content hash from each type's names hash (or count) and the relations."""
    h = hashlib.sha256()
    for t, d in zip(ds.entity_types, per_type, strict=True):
        h.update(f"{t}\0{d}\0".encode())
    rel = NamesHash()
    rel.update(pa.array(ds.relation_names, pa.string()))
    h.update(rel.hexdigest().encode())
    h.update(np.ascontiguousarray(ds.relation_types, np.int32).tobytes())
    return h.hexdigest()


def content_hash(cfg: TrainConfig, ds: Dataset, sink=None) -> str:
    """sha256 of the entity names of every type (id order; the count where a type keeps no names)
    and of the relation names and types: equal exactly when the data assigns the same ids. The
    names are read a batch at a time; `sink(i, batches)`, if given, also receives them (to copy)."""
    per_type = []
    for i, t in enumerate(ds.entity_types):
        batches = name_batches(cfg, ds, t)
        if batches is None:
            per_type.append(f"count:{ds.num_entities(t)}")
            continue
        h = NamesHash()

        def hashed(batches=batches, h=h):
            for b in batches:
                h.update(b)
                yield b

        if sink is not None:
            sink(i, hashed())
        else:
            for _ in hashed():
                pass
        per_type.append(h.hexdigest())
    return _digest(ds, per_type)


def read_mapping(location: str) -> dict | None:
    """The mapping.json of a checkpoint location, or None (a run from before mappings were kept)."""
    raw = kv.read_object(kv.base_url(location), MAPPING)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{kv.base_url(location)}{MAPPING}: unreadable ({e})") from None


def keep_mapping(location: str, cfg: TrainConfig, ds: Dataset) -> str:
    """Check the data against the mapping kept at `location` (a resumed run), or keep this data's
    mapping there (a fresh one: the names copied a batch at a time while they are hashed). Returns
    the content hash. CheckpointError when the data assigns other ids than the checkpoint was
    trained with."""
    kept = read_mapping(location)
    if kept is not None:
        digest = content_hash(cfg, ds)
        check_hash(kept, digest, location)
        return digest
    named = [False] * len(ds.entity_types)

    def write(i: int, batches) -> None:
        named[i] = True
        _put_parquet(location, f"names/{i}.parquet", batches)

    digest = content_hash(cfg, ds, sink=write)
    types = list(ds.entity_types)
    mapping = {
        "format": FORMAT, "name": ds.name, "hash": digest, "entity_types": types,
        "entity_counts": {t: ds.num_entities(t) for t in types}, "named": named,
        "relation_names": list(ds.relation_names),
        "relation_types": np.asarray(ds.relation_types).astype(int).tolist(),
        "partitions": dict(ds.partitions) if ds.partitions else None,
        "partition_seed": ds.partition_seed,
    }
    kv.write_object(kv.base_url(location), MAPPING, json.dumps(mapping, indent=1).encode())
    return digest


def _put_parquet(location: str, key: str, batches) -> None:
    """Write string batches as a one-column (`name`) Parquet file; on local disk streamed into a
    temporary file renamed over the key (memory: one batch)."""
    schema = pa.schema([("name", pa.string())])
    url = kv.base_url(location)
    if kv.is_local(url):
        path = os.path.join(kv.local_path(url), key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp.{os.getpid()}"
        with pq.ParquetWriter(tmp, schema) as w:
            for b in batches:
                w.write_table(pa.table({"name": b.cast(pa.string())}, schema=schema))
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return
    buf = io.BytesIO()
    with pq.ParquetWriter(buf, schema) as w:
        for b in batches:
            w.write_table(pa.table({"name": b.cast(pa.string())}, schema=schema))
    kv.write_object(kv.base_url(location), key, buf.getvalue())


def check_hash(kept: dict, digest: str, location: str) -> None:
    """CheckpointError unless the data's content hash is the one kept (a mapping of another format
    is not compared)."""
    if kept.get("format") == FORMAT and kept["hash"] != digest:
        raise CheckpointError(
            f"{kv.base_url(location)}: the data assigns other ids than this checkpoint was trained "
            f"with (names hash {digest[:12]} != {kept['hash'][:12]}: a reordered or changed data "
            "file); point data.root/data.path at the data it was trained on")


def dataset_from_mapping(location: str, kept: dict) -> Dataset:
    """The run's Dataset without edges: names, relations and partitioning from the mapping."""
    names: dict[str, pa.Array | None] = {}
    for i, (t, named) in enumerate(zip(kept["entity_types"], kept["named"], strict=True)):
        names[t] = None
        if named:
            raw = kv.read_object(kv.base_url(location), f"names/{i}.parquet")
            if raw is None:
                raise CheckpointError(f"{kv.base_url(location)}names/{i}.parquet: missing "
                                      f"(the names of {t!r} kept with the run)")
            names[t] = pq.read_table(io.BytesIO(raw)).column("name").combine_chunks()
    return Dataset(kept["name"], list(kept["entity_types"]), names, list(kept["relation_names"]),
                   np.array(kept["relation_types"], np.int32).reshape(-1, 2),
                   entity_counts=dict(kept["entity_counts"]),
                   partitions=kept["partitions"], partition_seed=kept["partition_seed"])
