"""One partition's table as a zarr v3 array in TensorStore: a single shard, so one contiguous read.

A partition of an entity type is its embedding rows float32 [M, D] plus its row-Adagrad
accumulators float32 [M] (M = the type's partition capacity, rows past the partition's entity
count are unused). Both are written once per version under a fresh key and never modified in
place (see checkpoint.py).
"""

from __future__ import annotations

import numpy as np
import tensorstore as ts

INNER_ROWS = 1 << 16  # rows per inner chunk of the shard (a few MB at D = 100)


def array_spec(url: str, shape: tuple[int, ...], dtype: str = "float32") -> dict:
    """zarr3 spec of an array stored as one shard of inner chunks of INNER_ROWS rows."""
    inner = (min(shape[0], INNER_ROWS), *shape[1:]) if shape[0] else (1, *shape[1:])
    shard = (-(-max(shape[0], 1) // inner[0]) * inner[0], *shape[1:])
    return {
        "driver": "zarr3",
        "kvstore": url,
        "metadata": {
            "shape": list(shape),
            "data_type": dtype,
            "chunk_grid": {"name": "regular", "configuration": {"chunk_shape": list(shard)}},
            "codecs": [
                {
                    "name": "sharding_indexed",
                    "configuration": {
                        "chunk_shape": list(inner),
                        "codecs": [{"name": "bytes", "configuration": {"endian": "little"}}],
                        "index_codecs": [
                            {"name": "bytes", "configuration": {"endian": "little"}},
                            {"name": "crc32c"},
                        ],
                    },
                }
            ],
        },
    }


def write_array(url: str, data: np.ndarray, context: ts.Context) -> None:
    """Create the array at `url` (replacing what is there) and write `data`; blocks until durable."""
    spec = array_spec(url, data.shape, str(data.dtype))
    arr = ts.open(spec, create=True, delete_existing=True, context=context).result()
    arr.write(data).result()


def read_array(url: str, context: ts.Context) -> np.ndarray:
    arr = ts.open({"driver": "zarr3", "kvstore": url}, open=True, context=context).result()
    return arr.read().result()


def read_rows(url: str, start: int, stop: int, context: ts.Context) -> np.ndarray:
    """Rows [start, stop) of a stored array (for export and prediction without loading all)."""
    arr = ts.open({"driver": "zarr3", "kvstore": url}, open=True, context=context).result()
    return arr[start:stop].read().result()
