"""A dataset in id space: entity and relation dictionaries plus train/valid/test edges.

Entity names map to contiguous ids per entity type (dictionary built over all splits, so every
evaluated entity has a row); relation names to ids in order of first appearance (train first).
Names are kept for export and prediction.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jgraph.config import TrainConfig
from jgraph.data import toy
from jgraph.data.graph import Dataset, Edges
from jgraph.data.tsv import EdgeColumns, read_edges
from jgraph.errors import DataError

SPLITS = ("train", "valid", "test")
log = logging.getLogger("jgraph")
__all__ = ["SPLITS", "Dataset", "Edges", "load_dataset"]  # the types live in graph.py


def load_dataset(cfg: TrainConfig) -> Dataset:
    """The dataset `cfg.data` describes, with relations typed by `cfg.relations`."""
    if cfg.data.format == "toy":
        ds = _toy_dataset(cfg)
    elif cfg.data.format == "tsv":
        ds = _tsv_dataset(cfg)
    elif cfg.data.format == "prepared":
        from jgraph.data.prepared import load_prepared

        d = cfg.data
        if d.valid_fraction or d.test_fraction or d.symmetric:
            raise DataError("data.valid_fraction, data.test_fraction and data.symmetric apply to TSV "
                            "data; a prepared dataset is split (and symmetrised) when it is imported: "
                            "python -m jgraph.cli.import_edges ... --valid-fraction F --test-fraction F")
        ds = load_prepared(cfg)
    else:
        raise ValueError(f"data.format must be toy, tsv or prepared, got {cfg.data.format!r}")
    if any(e.featurized for e in cfg.entities.values()):
        from jgraph.data.features import attach_features

        attach_features(cfg, ds)
    _split_if_asked(cfg, ds)
    warn_unseen(ds)
    if cfg.data.symmetric:
        _add_reverse(ds)
        ds.symmetric = True
    return ds


def unseen(ds: Dataset) -> dict[str, tuple[int, int, int]]:
    """Per evaluation split: (edges with an entity or relation not in train, such entities, such
    relations)."""
    train = ds.splits.get("train")
    if train is None:
        return {}
    seen_rel = np.zeros(ds.num_relations, bool)
    seen_rel[train.rel] = True
    seen = [np.zeros(ds.num_entities(t), bool) for t in ds.entity_types]
    for side, ids in ((0, train.lhs), (1, train.rhs)):
        types = ds.relation_types[train.rel, side]
        for t in range(len(seen)):
            seen[t][ids[types == t]] = True
    out = {}
    for split, e in ds.splits.items():
        if split == "train" or not len(e):
            continue
        bad = ~seen_rel[e.rel]
        new: set[tuple[int, int]] = set()
        for side, ids in ((0, e.lhs), (1, e.rhs)):
            types = ds.relation_types[e.rel, side]
            for t in range(len(seen)):
                m = (types == t) & ~seen[t][np.clip(ids, 0, len(seen[t]) - 1)]
                bad |= m
                new.update((t, int(i)) for i in np.unique(ids[m]))
        if bad.any():
            out[split] = (int(bad.sum()), len(new), int(np.unique(e.rel[~seen_rel[e.rel]]).size))
    return out


def warn_unseen(ds: Dataset) -> None:
    """Warn about evaluation edges whose entity or relation never occurs in train. They are kept
    and scored like every other edge (their rows are trained by nothing, only initialized), so
    the figures stay comparable with published ones that include them (FB15k-237's test set)."""
    for split, (edges, ents, rels) in unseen(ds).items():
        log.warning("%s: %d of %d %s edges have an entity or relation never seen in train (%d "
                    "entities, %d relations); they are scored with untrained rows", ds.name, edges,
                    len(ds.splits[split]), split, ents, rels)


def _relation_types(cfg: TrainConfig, names: list[str], types: list[str]) -> np.ndarray:
    listed = {r.name: r for r in cfg.relations}
    unknown = sorted(set(listed) - set(names))
    if unknown:
        raise DataError(f"relations: {unknown} are not in the data (it has {len(names)} relations)")
    out = np.zeros((len(names), 2), np.int32)
    for i, name in enumerate(names):
        if name in listed:
            out[i] = (types.index(listed[name].lhs), types.index(listed[name].rhs))
        elif len(types) == 1:
            out[i] = (0, 0)
        else:
            raise DataError(
                f"relation {name!r} has no entry in `relations`; with several entity types "
                f"({', '.join(types)}) every relation must say its lhs and rhs types"
            )
    return out


def _toy_dataset(cfg: TrainConfig) -> Dataset:
    t = cfg.data.toy
    edges = toy.generate(t)
    rng = np.random.default_rng(t.seed + 1)
    perm = rng.permutation(len(edges["lhs"]))
    n_valid, n_test = int(len(perm) * t.valid_fraction), int(len(perm) * t.test_fraction)
    parts = {"valid": perm[:n_valid], "test": perm[n_valid : n_valid + n_test],
             "train": perm[n_valid + n_test :]}
    types = list(cfg.entities)
    names = toy.relation_names(t.num_relations)
    ds = Dataset(
        name=cfg.data.name,
        entity_types=types,
        entity_names={types[0]: pa.array(toy.entity_names(t.num_entities))},
        relation_names=names,
        relation_types=_relation_types(cfg, names, types[:1]),
    )
    for split, idx in parts.items():
        ds.splits[split] = Edges(edges["lhs"][idx], edges["rhs"][idx], edges["rel"][idx].astype(np.int32))
    return ds


def _tsv_dataset(cfg: TrainConfig) -> Dataset:
    d = cfg.data
    folder = Path(d.root) / d.path
    files = {s: getattr(d, s) for s in SPLITS if getattr(d, s)}
    missing = [str(folder / f) for f in files.values() if not (folder / f).is_file()]
    if missing:
        hint = d.download_hint or "see README.md, section Data"
        raise DataError(
            f"dataset {d.name!r}: missing {', '.join(missing)}. Set data.root (or JGRAPH_DATA) to "
            f"the folder holding {d.path or 'the data'}/ — now {d.root!r}. {hint}"
        )
    cols: dict[str, EdgeColumns] = {
        s: read_edges(folder / f, d.delimiter, d.columns, d.skip_rows) for s, f in files.items()
    }
    if "train" not in cols:
        raise DataError("data.train must name a file")
    has_rel = cols["train"].rel is not None
    for c in cols.values():
        if (c.rel is not None) != has_rel:
            with_rel, without = (cols["train"], c) if has_rel else (c, cols["train"])
            raise DataError(f"{with_rel.path} has a relation column but {without.path} has none: "
                            "every file of a dataset needs the same columns (set data.columns)")
    if has_rel:
        all_rel = pa.chunked_array([c.rel for c in cols.values()]).combine_chunks()
        rel_names = pc.unique(all_rel).to_pylist()
    else:
        rel_names = [d.relation_name]
    types = list(cfg.entities)
    rel_types = _relation_types(cfg, rel_names, types)
    rel_ids = {
        s: _index(c.rel, rel_names) if has_rel else np.zeros(len(c), np.int32) for s, c in cols.items()
    }

    names: dict[str, pa.Array] = {}
    for t_idx, t in enumerate(types):
        pieces = []
        for s, c in cols.items():
            for side, arr in ((0, c.lhs), (1, c.rhs)):
                mask = rel_types[rel_ids[s], side] == t_idx
                pieces.append(arr if mask.all() else arr.filter(pa.array(mask)))
        names[t] = pc.unique(pa.chunked_array(pieces).combine_chunks())
    ds = Dataset(d.name, types, names, rel_names, rel_types)
    for s, c in cols.items():
        lhs = np.empty(len(c), np.int64)
        rhs = np.empty(len(c), np.int64)
        for t_idx, t in enumerate(types):
            for side, arr, out in ((0, c.lhs, lhs), (1, c.rhs, rhs)):
                mask = rel_types[rel_ids[s], side] == t_idx
                if mask.any():
                    sub = arr if mask.all() else arr.filter(pa.array(mask))
                    out[mask] = pc.index_in(sub, value_set=names[t]).to_numpy(zero_copy_only=False)
        ds.splits[s] = Edges(lhs, rhs, rel_ids[s].astype(np.int32), c.weight)
    return ds


def _index(arr: pa.Array, names: list[str]) -> np.ndarray:
    return pc.index_in(arr, value_set=pa.array(names)).to_numpy(zero_copy_only=False).astype(np.int32)


def _split_if_asked(cfg: TrainConfig, ds: Dataset) -> None:
    d = cfg.data
    want = {s: f for s, f in (("valid", d.valid_fraction), ("test", d.test_fraction))
            if f > 0 and s not in ds.splits}
    if not want:
        return
    train = ds.splits["train"]
    perm = np.random.default_rng(d.split_seed).permutation(len(train))
    start = 0
    for s, frac in want.items():
        n = int(len(train) * frac)
        ds.splits[s] = train.take(np.sort(perm[start : start + n]))
        start += n
    ds.splits["train"] = train.take(np.sort(perm[start:]))


def _add_reverse(ds: Dataset) -> None:
    tr = ds.splits["train"]
    same = ds.relation_types[tr.rel, 0] == ds.relation_types[tr.rel, 1]
    rev = Edges(tr.rhs[same], tr.lhs[same], tr.rel[same], None if tr.weight is None else tr.weight[same])
    ds.splits["train"] = Edges.concat([tr, rev])
