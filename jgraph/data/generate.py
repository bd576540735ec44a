"""Generated graphs for benchmarks: uniformly random edges, written straight into a prepared
dataset bucket by bucket (memory: one bucket's edges), so billion-edge benchmarks need no TSV."""

from __future__ import annotations

import numpy as np

from jgraph.data.dataset import Edges
from jgraph.data.prepared import PreparedWriter
from jgraph.plan.partition import PartitionLayout


def random_prepared(location: str, nodes: int, edges: int, parts: int, seed: int = 0,
                    test_edges: int = 1000) -> None:
    """A random graph of `nodes` entities (one type) and `edges` edges (one relation), cut into
    `parts` partitions, with `test_edges` random test edges."""
    layout = PartitionLayout.build({"entity": nodes}, {"entity": parts}, seed)
    sizes = layout.types[0].sizes
    w = PreparedWriter(location, name=f"random-{nodes}-{edges}-p{parts}", entity_counts={"entity": nodes},
                       partitions={"entity": parts}, partition_seed=seed,
                       relations=[{"name": "edge", "lhs": "entity", "rhs": "entity"}])
    rng = np.random.default_rng(seed)
    per_bucket = np.full(parts * parts, edges // (parts * parts))
    per_bucket[: edges - per_bucket.sum()] += 1
    for b, n in enumerate(per_bucket):
        i, j = divmod(b, parts)
        w.train.write((i, j), rng.integers(sizes[i], size=n), rng.integers(sizes[j], size=n),
                      np.zeros(n, np.int32))
    ids = rng.integers(nodes, size=(2, test_edges))
    w.write_split("test", Edges(ids[0], ids[1], np.zeros(test_edges, np.int32)))
    w.finish()


def random_dataset(nodes: int, edges: int, seed: int = 0):
    """A random graph in memory (one entity type, one relation): the throughput benchmarks' input."""
    import pyarrow as pa

    from jgraph.data.dataset import Dataset

    rng = np.random.default_rng(seed)
    names = pa.array(np.arange(nodes).astype(str))
    ds = Dataset("generated", ["entity"], {"entity": names}, ["edge"], np.zeros((1, 2), np.int32))
    ds.splits["train"] = Edges(rng.integers(nodes, size=edges), rng.integers(nodes, size=edges),
                               np.zeros(edges, np.int32))
    return ds
