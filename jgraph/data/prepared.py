"""Prepared datasets: a graph already cut into partitions and edge buckets, stored in TensorStore.

Training reads such a dataset bucket by bucket, so neither its edges nor its entity names need to
fit in memory. Layout under a location (path or kvstore URL):
    dataset.json               written last (an interrupted write leaves no usable dataset)
    train/                     bucketed train edges (storage/edges.py), lhs/rhs = rows in partitions
    valid/{lhs,rhs,rel}, test/ flat evaluation edges (entity ids per type), zarr3
    names/{type}.parquet       entity names in id order (optional)
Partitions follow jgraph.plan.partition's seeded rule, from `partition_seed`, so the trainer finds every
entity's partition and row again.
"""

from __future__ import annotations

import io
import json
import os
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import tensorstore as ts

from jgraph.config import TrainConfig
from jgraph.data.graph import Dataset, Edges
from jgraph.errors import DataError
from jgraph.storage import kv
from jgraph.storage.edges import BucketWriter

if TYPE_CHECKING:
    from jgraph.plan.partition import PartitionLayout

META = "dataset.json"
SPLIT_FIELDS = (("lhs", "int64"), ("rhs", "int64"), ("rel", "int32"), ("weight", "float32"))


class PreparedWriter:
    """Writes a prepared dataset; nothing is readable until `finish`."""

    def __init__(self, location: str, *, name: str, entity_counts: dict[str, int],
                 partitions: dict[str, int], partition_seed: int, relations: list[dict[str, str]],
                 weight: bool = False, context: ts.Context | None = None) -> None:
        self.url = kv.base_url(location)
        self.context = context or ts.Context()
        self.meta: dict[str, Any] = {
            "format": 1, "name": name, "entity_types": list(entity_counts),
            "entity_counts": dict(entity_counts), "partitions": dict(partitions),
            "partition_seed": partition_seed, "relations": relations, "splits": {}, "names": [],
        }
        types = list(entity_counts)
        rel_types = np.array([[types.index(r["lhs"]), types.index(r["rhs"])] for r in relations])
        n_l = max([partitions[types[t]] for t in np.unique(rel_types[:, 0])] or [1])
        n_r = max([partitions[types[t]] for t in np.unique(rel_types[:, 1])] or [1])
        self.train = BucketWriter(kv.join(self.url, "train"), n_l, n_r, weight, self.context)
        self.kv = kv.open_kvstore(self.url, self.context)

    def write_split(self, split: str, edges: Edges) -> None:
        for name, dtype in SPLIT_FIELDS:
            data = getattr(edges, name)
            if data is None:
                continue
            arr = ts.open({"driver": "zarr3", "kvstore": kv.join(self.url, split, name),
                           "metadata": {"shape": [len(data)], "data_type": dtype}},
                          create=True, delete_existing=True, context=self.context).result()
            if len(data):
                arr.write(np.asarray(data, dtype)).result()
        self.meta["splits"][split] = {"count": len(edges), "weight": edges.weight is not None}

    def write_split_pieces(self, split: str, count: int, pieces, weight: bool, fresh: bool = False) -> None:
        """Like write_split, from consecutive pieces of Edges (memory: one piece); `fresh`: nothing
        old to delete at this location."""
        arrays = {}
        for name, dtype in SPLIT_FIELDS:
            if name == "weight" and not weight:
                continue
            arrays[name] = ts.open({"driver": "zarr3", "kvstore": kv.join(self.url, split, name),
                                    "metadata": {"shape": [count], "data_type": dtype}},
                                   create=True, delete_existing=not fresh, context=self.context).result()
        start = 0
        for e in pieces:
            futs = [arr[start : start + len(e)].write(np.asarray(getattr(e, name), dtype))
                    for (name, dtype), arr in ((f, arrays[f[0]]) for f in SPLIT_FIELDS if f[0] in arrays)]
            for f in futs:
                f.result()
            start += len(e)
        if start != count:
            raise ValueError(f"split {split}: {start} edges written, {count} announced")
        self.meta["splits"][split] = {"count": count, "weight": weight}

    def write_names_batches(self, entity_type: str, batches) -> None:
        """Entity names in id order from consecutive string arrays (memory: one batch, plus the
        compressed file when the location is not a local path)."""
        key = f"names/{entity_type}.parquet"
        schema = pa.schema([("name", pa.string())])
        local = kv.is_local(self.url)
        if local:
            path = os.path.join(kv.local_path(self.url), key)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            sink = path
        else:
            sink = io.BytesIO()
        with pq.ParquetWriter(sink, schema) as w:
            for names in batches:
                w.write_table(pa.table({"name": names.cast(pa.string())}, schema=schema))
        if not local:
            self.kv.write(key, sink.getvalue()).result()
        self.meta["names"].append(entity_type)

    def write_names(self, entity_type: str, names: pa.Array) -> None:
        buf = io.BytesIO()
        pq.write_table(pa.table({"name": names}), buf)
        self.kv.write(f"names/{entity_type}.parquet", buf.getvalue()).result()
        self.meta["names"].append(entity_type)

    def finish(self) -> None:
        self.train.finish()
        self.kv.write(META, json.dumps(self.meta, indent=1).encode()).result()


def dataset_location(d) -> str:
    """Where the prepared dataset of a DataConfig lives: data.path, under data.root unless a URL."""
    return d.path if "://" in d.path else f"{d.root.rstrip('/')}/{d.path}"


def load_prepared(cfg: TrainConfig) -> Dataset:
    d = cfg.data
    location = dataset_location(d)
    url = kv.base_url(location)
    context = ts.Context()
    store = kv.open_kvstore(url, context)
    r = store.read(META).result()
    if r.state != "value":
        raise DataError(f"prepared dataset {location}: no {META} (missing, or an interrupted import). "
                        f"{d.download_hint}")
    meta = json.loads(r.value)
    types = meta["entity_types"]
    for t in types:
        want = cfg.entities[t].num_partitions if t in cfg.entities else None
        if want != meta["partitions"][t]:
            raise DataError(f"prepared dataset {location}: entity type {t!r} was cut into "
                            f"{meta['partitions'][t]} partitions, the config asks for {want}; "
                            "set entities.<type>.num_partitions to match or prepare it again")
    rel_types = np.array([[types.index(r["lhs"]), types.index(r["rhs"])] for r in meta["relations"]],
                         np.int32).reshape(-1, 2)
    names: dict[str, pa.Array | None] = {t: None for t in types}
    ds = Dataset(meta["name"], types, names, [r["name"] for r in meta["relations"]], rel_types,
                 entity_counts=dict(meta["entity_counts"]), train_buckets=kv.join(url, "train"),
                 partitions=dict(meta["partitions"]), partition_seed=int(meta["partition_seed"]))
    for split, info in meta["splits"].items():
        cols = {}
        for name, _ in SPLIT_FIELDS:
            if name == "weight" and not info["weight"]:
                continue
            arr = ts.open({"driver": "zarr3", "kvstore": kv.join(url, split, name)}, open=True,
                          context=context).result()
            cols[name] = arr.read().result()
        ds.splits[split] = Edges(cols["lhs"], cols["rhs"], cols["rel"], cols.get("weight"))
    return ds


def load_names(location: str, entity_type: str) -> pa.Array:
    url = kv.base_url(location)
    r = kv.open_kvstore(url, ts.Context()).read(f"names/{entity_type}.parquet").result()
    if r.state != "value":
        raise DataError(f"prepared dataset {location}: no names for {entity_type!r}")
    return pq.read_table(io.BytesIO(r.value)).column("name").combine_chunks()


def train_edges(ds: Dataset) -> Edges:
    """All train edges of a prepared dataset back in entity-id space (for filtered ranking)."""
    from jgraph.plan.partition import PartitionLayout
    from jgraph.storage.edges import EdgeBucketStore

    counts = {t: ds.num_entities(t) for t in ds.entity_types}
    layout = PartitionLayout.build(counts, ds.partitions, ds.partition_seed)
    store = EdgeBucketStore(ds.train_buckets)
    parts = []
    try:
        for i in range(store.n_lhs):
            for j in range(store.n_rhs):
                lhs_off, rhs_off, rel, w = store.edges((i, j))
                ids = []
                for side, off, part in ((0, lhs_off, i), (1, rhs_off, j)):
                    ids.append(bucket_entity_ids(ds, layout, part, off, rel, side))
                parts.append(Edges(ids[0], ids[1], rel, w))
    finally:
        store.close()
    return Edges.concat(parts)


def bucket_entity_ids(ds: Dataset, layout: PartitionLayout, part: int, off: np.ndarray,
                      rel: np.ndarray, side: int) -> np.ndarray:
    """Entity ids [E] of a bucket's partition-local offsets `off` [E] on one side (0: lhs, 1:
    rhs) of partition `part`, the edges' relations `rel` [E] giving each one's entity type."""
    out = np.empty(len(off), np.int64)
    types = ds.relation_types[rel, side]
    for t in np.unique(types):
        tp = layout.types[t]
        m = types == t
        out[m] = tp.members[part if tp.num_partitions > 1 else 0][off[m]]
    return out
