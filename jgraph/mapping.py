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

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from jgraph.config import TrainConfig
from jgraph.data.dataset import Dataset
from jgraph.errors import DataError
from jgraph.storage import kv
from jgraph.storage.checkpoint import CheckpointError

MAPPING = "mapping.json"
FORMAT = 1


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


def _hash_strings(h, arr: pa.Array) -> None:
    """Feed a string array's content (not its chunking or buffer offsets) to hash h."""
    a = pa.chunked_array([arr]).combine_chunks().cast(pa.large_string()) if len(arr) else None
    h.update(len(arr).to_bytes(8, "little"))
    if a is None:
        return
    offsets = np.frombuffer(a.buffers()[1], np.int64)[a.offset : a.offset + len(a) + 1]
    h.update((offsets - offsets[0]).tobytes())
    h.update(memoryview(a.buffers()[2])[offsets[0] : offsets[-1]])


def content_hash(cfg: TrainConfig, ds: Dataset) -> str:
    """sha256 of the entity names of every type (id order; counts where a type keeps no names)
    and of the relation names and types: equal exactly when the data assigns the same ids."""
    h = hashlib.sha256()
    for t in ds.entity_types:
        h.update(t.encode() + b"\0")
        names = entity_names(cfg, ds, t)
        if names is None:
            h.update(b"count:" + str(ds.num_entities(t)).encode())
        else:
            _hash_strings(h, names)
    _hash_strings(h, pa.array(ds.relation_names, pa.string()))
    h.update(np.ascontiguousarray(ds.relation_types, np.int32).tobytes())
    return h.hexdigest()


def _put(location: str, key: str, data: bytes) -> None:
    """Write one object; on local disk through a temporary file renamed over it."""
    url = kv.base_url(location)
    if kv.is_local(url):
        path = os.path.join(kv.local_path(url), key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = f"{path}.tmp.{os.getpid()}"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return
    import tensorstore as ts

    kv.open_kvstore(url, ts.Context()).write(key, data).result()


def _get(location: str, key: str) -> bytes | None:
    url = kv.base_url(location)
    if kv.is_local(url):
        path = os.path.join(kv.local_path(url), key)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()
    import tensorstore as ts

    r = kv.open_kvstore(url, ts.Context()).read(key).result()
    return r.value if r.state == "value" else None


def read_mapping(location: str) -> dict | None:
    """The mapping.json of a checkpoint location, or None (a run from before mappings were kept)."""
    raw = _get(location, MAPPING)
    if raw is None:
        return None
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{kv.base_url(location)}{MAPPING}: unreadable ({e})") from None


def keep_mapping(location: str, cfg: TrainConfig, ds: Dataset) -> str:
    """Check the data against the mapping kept at `location` (a resumed run), or keep this data's
    mapping there (a fresh one). Returns the content hash. CheckpointError when the data assigns
    other ids than the checkpoint was trained with."""
    digest = content_hash(cfg, ds)
    kept = read_mapping(location)
    if kept is not None:
        check_hash(kept, digest, location)
        return digest
    types = list(ds.entity_types)
    for i, t in enumerate(types):
        names = entity_names(cfg, ds, t)
        if names is not None:
            buf = io.BytesIO()
            pq.write_table(pa.table({"name": names.cast(pa.string())}), buf)
            _put(location, f"names/{i}.parquet", buf.getvalue())
    mapping = {
        "format": FORMAT, "name": ds.name, "hash": digest, "entity_types": types,
        "entity_counts": {t: ds.num_entities(t) for t in types},
        "named": [entity_names(cfg, ds, t) is not None for t in types],
        "relation_names": list(ds.relation_names),
        "relation_types": np.asarray(ds.relation_types).astype(int).tolist(),
        "partitions": dict(ds.partitions) if ds.partitions else None,
        "partition_seed": ds.partition_seed,
    }
    _put(location, MAPPING, json.dumps(mapping, indent=1).encode())
    return digest


def check_hash(kept: dict, digest: str, location: str) -> None:
    if kept["hash"] != digest:
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
            raw = _get(location, f"names/{i}.parquet")
            if raw is None:
                raise CheckpointError(f"{kv.base_url(location)}names/{i}.parquet: missing "
                                      f"(the names of {t!r} kept with the run)")
            names[t] = pq.read_table(io.BytesIO(raw)).column("name").combine_chunks()
    return Dataset(kept["name"], list(kept["entity_types"]), names, list(kept["relation_names"]),
                   np.array(kept["relation_types"], np.int32).reshape(-1, 2),
                   entity_counts=dict(kept["entity_counts"]),
                   partitions=kept["partitions"], partition_seed=kept["partition_seed"])
