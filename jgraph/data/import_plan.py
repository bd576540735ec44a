"""The importer's pass 2 (jgraph/data/importer.py): which relations and entities are kept, their final
ids, and the partition and row of every provisional id; and the hash that draws valid/test edges."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from jgraph.errors import DataError
from jgraph.plan.partition import PartitionLayout

if TYPE_CHECKING:
    from jgraph.data.importer import ImportSpec, _Reading


def split_uniform(seed: int, index: np.ndarray) -> np.ndarray:
    """A uniform [0, 1) number per row index (splitmix64 of seed and index)."""
    x = index.astype(np.uint64) + np.uint64((seed * 0x9E3779B97F4A7C15 + 0x9E3779B97F4A7C15) % (1 << 64))
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x ^= x >> np.uint64(31)
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


class Plan:
    """Pass 2: what is kept, final ids, and where every provisional id goes."""

    def __init__(self, spec: ImportSpec, reading: _Reading) -> None:
        self.rel_keep = reading.rel_counts >= spec.relation_min_count
        if not self.rel_keep.any():
            raise DataError(f"no relation has >= {spec.relation_min_count} edges")
        self.rel_map = np.where(self.rel_keep, np.cumsum(self.rel_keep) - 1, -1)
        kept_types = reading.rel_types[self.rel_keep]
        self.used = sorted(set(kept_types.ravel().tolist()))  # type indices of `reading.types`
        self.types = [reading.types[t] for t in self.used]
        index = np.full(len(reading.types), -1, np.int64)
        index[self.used] = np.arange(len(self.used))
        keep = {t: np.ones(len(reading.ents.get(reading.types[t], ())), bool) for t in self.used}
        if spec.entity_min_count > 1:  # counted over the edges of the kept relations
            counts = {t: np.zeros(len(keep[t]), np.int64) for t in self.used}
            for spill in reading.spills.values():
                for _, (lhs, rel, rhs, _w) in spill.pieces(spec.chunk_edges):
                    ok = self.rel_keep[rel]
                    for side, ids in ((0, lhs), (1, rhs)):
                        t_of = reading.rel_types[:, side][rel]
                        for t in self.used:
                            counts[t] += np.bincount(ids[ok & (t_of == t)], minlength=len(counts[t]))
            keep = {t: counts[t] >= spec.entity_min_count for t in self.used}
        self.keep = keep
        self.ent_map = {t: np.where(k, np.cumsum(k) - 1, -1) for t, k in keep.items()}
        self.entity_counts = {reading.types[t]: int(k.sum()) for t, k in keep.items()}
        self.parts = {t: spec.partitions.get(t, spec.partitions.get("*", 1)) for t in self.types}
        layout = PartitionLayout.build(self.entity_counts, self.parts, spec.partition_seed)
        self.place = {}  # provisional id -> partition << 32 | row in the partition (-1: dropped)
        for t, m in self.ent_map.items():
            tp = layout.types[self.types.index(reading.types[t])]
            ok = m >= 0
            self.place[t] = np.full(len(m), -1, np.int64)
            self.place[t][ok] = (tp.part_of[m[ok]].astype(np.int64) << 32) | tp.offset_of[m[ok]]
        names = [n for n, k in zip(reading.rel_names, self.rel_keep, strict=True) if k]
        self.relations = [{"name": n, "lhs": self.types[a], "rhs": self.types[b]}
                          for n, (a, b) in zip(names, index[kept_types].tolist(), strict=True)]
        self.filtered = not self.rel_keep.all() or not all(k.all() for k in keep.values())

    def lookup(self, table: dict, rel_types: np.ndarray, side: int, rel: np.ndarray, ids: np.ndarray
               ) -> np.ndarray:
        """table[type of the side's entity][ids] for each edge (-1 where dropped)."""
        if len(self.used) == 1:
            return table[self.used[0]][ids]
        t_of = rel_types[:, side][rel]
        out = np.full(len(ids), -1, np.int64)
        for t in self.used:
            m = t_of == t
            out[m] = table[t][ids[m]]
        return out
