"""Edge buckets in TensorStore: what a bucket trains, read one edge chunk at a time.

Layout under a location (path or kvstore URL):
    edges.json                     written last: bucket grid, per-bucket edge counts, weights or not
    b{i}_{j}/{lhs,rhs,rel,weight}  1-D zarr3 arrays of one bucket (lhs/rhs: rows inside partitions)

A bucket's edges are read as `num_edge_chunks` contiguous slices (PBG's edge chunks), so only one
slice of one bucket is in memory at a time. A location without edges.json is incomplete (an
interrupted write) and refused.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np
import tensorstore as ts

from jgraph.plan.buckets import Bucket, BucketedEdges
from jgraph.storage import kv

META = "edges.json"
CHUNK = 1 << 20  # elements per stored chunk (4 MiB of int32)
FIELDS = (("lhs", "int32"), ("rhs", "int32"), ("rel", "int32"), ("weight", "float32"))


def _spec(url: str, n: int, dtype: str) -> dict:
    return {
        "driver": "zarr3",
        "kvstore": url,
        "metadata": {
            "shape": [n],
            "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": [max(1, min(n, CHUNK))]}},
        },
    }


def chunk_slice(count: int, chunk: int, num_chunks: int) -> tuple[int, int]:
    """Edges [start, stop) of edge chunk `chunk` of a bucket of `count` edges (PBG's split)."""
    size = -(-count // num_chunks) if count else 0
    return min(chunk * size, count), min((chunk + 1) * size, count)


class EdgeBucketStore:
    """Read side of the bucketed edge layout (see module docstring)."""

    def __init__(self, location: str, context: ts.Context | None = None, io_threads: int = 4) -> None:
        self.url = kv.base_url(location)
        self.context = context or ts.Context()
        store = kv.open_kvstore(self.url, self.context)
        r = store.read(META).result()
        if r.state != "value":
            raise FileNotFoundError(f"{self.url}{META}: no bucketed edges here (missing or incomplete)")
        self.meta = json.loads(r.value)
        self.n_lhs, self.n_rhs = int(self.meta["n_lhs"]), int(self.meta["n_rhs"])
        self.has_weight = bool(self.meta["weight"])
        self._pool = ThreadPoolExecutor(io_threads, thread_name_prefix="jgraph-edges")
        self.bytes_read = 0
        self.io_seconds = 0.0

    def count(self, bucket: Bucket) -> int:
        return int(self.meta["counts"][bucket[0] * self.n_rhs + bucket[1]])

    def read(self, bucket: Bucket, chunk: int = 0, num_chunks: int = 1) -> Future:
        """Future of (lhs_off [E], rhs_off [E], rel [E], weight [E] or None) of one edge chunk."""
        start, stop = chunk_slice(self.count(bucket), chunk, num_chunks)

        def work():
            t0 = time.perf_counter()
            out = []
            for name, dtype in FIELDS:
                if name == "weight" and not self.has_weight:
                    out.append(None)
                    continue
                if stop <= start:
                    out.append(np.zeros(0, dtype))
                    continue
                url = kv.join(self.url, f"b{bucket[0]}_{bucket[1]}", name)
                arr = ts.open({"driver": "zarr3", "kvstore": url}, open=True, context=self.context).result()
                data = arr[start:stop].read().result()
                self.bytes_read += data.nbytes
                out.append(data)
            self.io_seconds += time.perf_counter() - t0
            return tuple(out)

        return self._pool.submit(work)

    def edges(self, bucket: Bucket, chunk: int = 0, num_chunks: int = 1):
        return self.read(bucket, chunk, num_chunks).result()

    def close(self) -> None:
        self._pool.shutdown(wait=True)


class BucketWriter:
    """Writes buckets one at a time (any order); `finish` writes edges.json, making them readable."""

    def __init__(self, location: str, n_lhs: int, n_rhs: int, weight: bool,
                 context: ts.Context | None = None) -> None:
        self.url = kv.base_url(location)
        self.context = context or ts.Context()
        self.n_lhs, self.n_rhs, self.weight = n_lhs, n_rhs, weight
        self.counts = [0] * (n_lhs * n_rhs)

    def write(self, bucket: Bucket, lhs: np.ndarray, rhs: np.ndarray, rel: np.ndarray,
              weight: np.ndarray | None = None) -> None:
        if self.weight != (weight is not None):
            raise ValueError("every bucket must have weights, or none")
        self.counts[bucket[0] * self.n_rhs + bucket[1]] = int(len(lhs))
        for (name, dtype), data in zip(FIELDS, (lhs, rhs, rel, weight), strict=True):
            if data is None:
                continue
            url = kv.join(self.url, f"b{bucket[0]}_{bucket[1]}", name)
            arr = ts.open(_spec(url, len(data), dtype), create=True, delete_existing=True,
                          context=self.context).result()
            if len(data):
                arr.write(np.asarray(data, dtype)).result()

    def write_pieces(self, bucket: Bucket, count: int, pieces, fresh: bool = False) -> None:
        """Write a bucket of `count` edges from consecutive pieces (lhs, rhs, rel, weight or None),
        so only one piece is in memory at a time (the streaming importer's path). `fresh`: the
        location is new, so there is nothing old to delete first."""
        self.counts[bucket[0] * self.n_rhs + bucket[1]] = int(count)
        opening = {}
        for name, dtype in FIELDS:
            if name == "weight" and not self.weight:
                continue
            url = kv.join(self.url, f"b{bucket[0]}_{bucket[1]}", name)
            opening[name] = ts.open(_spec(url, count, dtype), create=True, delete_existing=not fresh,
                                    context=self.context)
        arrays = {name: f.result() for name, f in opening.items()}
        start = 0
        for piece in pieces:
            n = len(piece[0])
            if (piece[3] is not None) != self.weight:
                raise ValueError("every bucket must have weights, or none")
            futs = [arrays[name][start : start + n].write(np.asarray(data, dtype))
                    for (name, dtype), data in zip(FIELDS, piece, strict=True) if name in arrays]
            for f in futs:
                f.result()
            start += n
        if start != count:
            raise ValueError(f"bucket {bucket}: {start} edges written, {count} announced")

    def finish(self) -> None:
        meta = {"n_lhs": self.n_lhs, "n_rhs": self.n_rhs, "counts": self.counts,
                "weight": self.weight, "format": 1}
        kv.open_kvstore(self.url, self.context).write(META, json.dumps(meta).encode()).result()


def write_buckets(location: str, edges: BucketedEdges, context: ts.Context | None = None) -> None:
    """Write in-memory bucketed edges in the layout above; edges.json goes last."""
    w = BucketWriter(location, edges.n_lhs, edges.n_rhs, edges.weight is not None, context)
    for i in range(edges.n_lhs):
        for j in range(edges.n_rhs):
            w.write((i, j), *edges.edges((i, j)))
    w.finish()
