"""The in-memory graph types: one split's edges (ids per entity type) and a dataset (entity and
relation dictionaries plus its splits). Below both loaders (dataset.py for toy and TSV data,
prepared.py for prepared datasets), so neither imports the other's types from above."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa


@dataclass
class Edges:
    """Edges of one split. Entity ids are per entity type (see Dataset.relation_types)."""

    lhs: np.ndarray  # int64 [E]
    rhs: np.ndarray  # int64 [E]
    rel: np.ndarray  # int32 [E]
    weight: np.ndarray | None = None  # float32 [E]

    def __len__(self) -> int:
        return int(self.lhs.shape[0])

    def take(self, idx: np.ndarray) -> Edges:
        w = None if self.weight is None else self.weight[idx]
        return Edges(self.lhs[idx], self.rhs[idx], self.rel[idx], w)

    @staticmethod
    def concat(parts: list[Edges]) -> Edges:
        has_w = any(p.weight is not None for p in parts)
        w = (
            np.concatenate([p.weight if p.weight is not None else np.ones(len(p), np.float32) for p in parts])
            if has_w else None
        )
        return Edges(
            np.concatenate([p.lhs for p in parts]),
            np.concatenate([p.rhs for p in parts]),
            np.concatenate([p.rel for p in parts]),
            w,
        )


@dataclass
class Dataset:
    name: str
    entity_types: list[str]
    entity_names: dict[str, pa.Array | None]  # type -> string [count] (id = index); None: not loaded
    relation_names: list[str]
    relation_types: np.ndarray  # int32 [R, 2]: index into entity_types of (lhs, rhs)
    splits: dict[str, Edges] = field(default_factory=dict)
    entity_counts: dict[str, int] = field(default_factory=dict)  # when names are not loaded
    train_buckets: str | None = None  # prepared datasets: location of the bucketed train edges
    partitions: dict[str, int] | None = None  # prepared datasets: partitions the buckets were cut by
    partition_seed: int | None = None
    symmetric: bool = False  # undirected (data.symmetric): (t, r, h) is true wherever (h, r, t) is;
    #                          train holds both as edges, evaluation filters with both
    features: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # featurized
    #   types: type -> (feature ids int32 [E, F], -1 = padding; weights float32 [E, F])
    #   (jgraph/data/features.py; the feature rows are the entity type feature_type_name(type))

    def num_entities(self, entity_type: str) -> int:
        names = self.entity_names.get(entity_type)
        return len(names) if names is not None else int(self.entity_counts[entity_type])

    @property
    def num_relations(self) -> int:
        return len(self.relation_names)
