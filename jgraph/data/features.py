"""Features files of featurized entity types (entities.T.featurized, entities.T.features): read,
and attached to a dataset as the hidden feature type and the padded feature lists of T's
entities (core/features.py says how training uses them).

A features file lists (entity, feature[, weight]) pairs: TSV lines `entity<TAB>feature[<TAB>weight]`
(an entity takes as many lines as it has features; lines starting with # are skipped) or a
Parquet file with string columns `entity`, `feature` and an optional float column `weight`. An
entity's embedding is the weighted mean of its features' rows (weights default to 1 and are
normalised per entity). An entity named only in the features file, in no edge, is added to T's
dictionary after the others (cold start: it gets the embedding of its features); an entity of the
edges without any feature has the zero embedding (PBG's empty bag).

Shapes: E entities of T, F the most features of one entity, V features in T's vocabulary.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from jgraph.config import EntityConfig, TrainConfig
from jgraph.core.features import feature_type_name
from jgraph.data.graph import Dataset
from jgraph.errors import ConfigError, DataError

log = logging.getLogger("jgraph")


def featurized_types(cfg: TrainConfig) -> list[str]:
    return [t for t, e in cfg.entities.items() if e.featurized]


def entity_config(cfg: TrainConfig, entity_type: str) -> EntityConfig:
    """The config of an entity type; a hidden feature type (and a type the config does not list)
    gets the defaults: one partition."""
    return cfg.entities.get(entity_type) or EntityConfig()


def check_featurized(cfg: TrainConfig) -> None:
    """The featurized and frozen settings are consistent (ConfigError, one line)."""
    for t in featurized_types(cfg):
        e = cfg.entities[t]
        if not e.features:
            raise ConfigError(f"entities.{t}.featurized needs entities.{t}.features (the features file)")
        if e.num_partitions != 1:
            raise ConfigError(f"entities.{t}: a featurized type must be unpartitioned (num_partitions "
                              f"1, as in PBG), got {e.num_partitions}; partition the other types")
        if e.encoder_hidden < 0:
            raise ConfigError(f"entities.{t}.encoder_hidden must be >= 0, got {e.encoder_hidden}")
    n = cfg.negatives
    if featurized_types(cfg) and (n.all_negs or getattr(n, "mode", "sampled") == "all"):
        raise ConfigError("negatives.mode=all (all_negs) is not supported with featurized entity "
                          "types (nor in PBG): use sampled negatives")
    if featurized_types(cfg) and cfg.distributed.num_processes > 1:
        raise ConfigError("featurized entity types train in one process (distributed.num_processes 1)")
    for t in cfg.training.frozen_types:
        if t not in cfg.entities:
            raise ConfigError(f"training.frozen_types: {t!r} is not an entity type "
                              f"({', '.join(cfg.entities)})")


def read_features(path: Path) -> tuple[pa.Array, pa.Array, np.ndarray | None]:
    """(entity names [N], feature names [N], weights float32 [N] or None) of a features file."""
    if not path.is_file():
        raise DataError(f"features file {path}: not found")
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        missing = {"entity", "feature"} - set(table.column_names)
        if missing:
            raise DataError(f"{path}: a features Parquet file needs columns entity and feature "
                            f"(missing {', '.join(sorted(missing))})")
        w = table.column("weight").to_numpy().astype(np.float32) if "weight" in table.column_names \
            else None
        return (table.column("entity").combine_chunks().cast(pa.string()),
                table.column("feature").combine_chunks().cast(pa.string()), w)
    ents, feats, weights = [], [], []
    with open(path, encoding="utf-8") as f:
        for no, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) not in (2, 3):
                raise DataError(f"{path}:{no}: expected entity<TAB>feature[<TAB>weight], "
                                f"got {len(cols)} columns")
            try:
                weights.append(float(cols[2]) if len(cols) == 3 else 1.0)
            except ValueError:
                raise DataError(f"{path}:{no}: weight {cols[2]!r} is not a number") from None
            ents.append(cols[0])
            feats.append(cols[1])
    w = np.asarray(weights, np.float32)
    return pa.array(ents, pa.string()), pa.array(feats, pa.string()), w


def feature_lists(eid: np.ndarray, fid: np.ndarray, w: np.ndarray, num_entities: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (entity id, feature id, weight) [N] -> (feature ids int32 [E, F], -1 padding;
    weights float32 [E, F], each entity's summing to 1 or all 0)."""
    order = np.argsort(eid, kind="stable")
    eid, fid, w = eid[order], fid[order], w[order]
    counts = np.bincount(eid, minlength=num_entities)
    width = max(int(counts.max()) if counts.size else 0, 1)
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    col = np.arange(eid.size) - start[eid]
    ids = np.full((num_entities, width), -1, np.int32)
    weight = np.zeros((num_entities, width), np.float32)
    ids[eid, col] = fid
    weight[eid, col] = w
    total = weight.sum(1, keepdims=True)
    return ids, np.divide(weight, total, out=np.zeros_like(weight), where=total > 0)


def attach_features(cfg: TrainConfig, ds: Dataset) -> None:
    """For each featurized type T: read its features file, add the entities only it names to T's
    dictionary, add the hidden type feature_type_name(T) (names: the feature vocabulary) and set
    ds.features[T]."""
    check_featurized(cfg)
    for t in featurized_types(cfg):
        path = Path(cfg.entities[t].features)
        if not path.is_absolute():
            path = Path(cfg.data.root) / cfg.data.path / path
        ents, feats, w = read_features(path)
        if w is not None and (not np.all(np.isfinite(w)) or (w < 0).any()):
            raise DataError(f"{path}: feature weights must be finite and >= 0")
        names = ds.entity_names.get(t)
        if names is None and cfg.data.format == "prepared":  # its names file (T unpartitioned:
            from jgraph.data.prepared import dataset_location, load_names  # new ids go at the end)

            names = load_names(dataset_location(cfg.data), t)
        if names is None:
            raise DataError(f"entities.{t}.featurized: the dataset keeps no names for {t!r}; "
                            "featurized types need named entities")
        known = pc.is_in(ents, value_set=names).to_numpy(zero_copy_only=False)
        new = pc.unique(ents.filter(pa.array(~known)))
        if len(new):
            log.info("%s: %d entities only in the features file (cold start) added to %r",
                     path, len(new), t)
            names = pa.concat_arrays([names.cast(pa.string()), new])
        ds.entity_names[t] = names
        ds.entity_counts[t] = len(names)
        vocab = pc.unique(feats)
        eid = pc.index_in(ents, value_set=names).to_numpy(zero_copy_only=False).astype(np.int64)
        fid = pc.index_in(feats, value_set=vocab).to_numpy(zero_copy_only=False).astype(np.int32)
        ids, weight = feature_lists(eid, fid, np.ones(eid.size, np.float32) if w is None else w,
                                    len(names))
        log.info("entities.%s: %d features, up to %d per entity (the step's feature width F)", t,
                 len(vocab), ids.shape[1])
        bare = int((weight.sum(1) == 0).sum())
        if bare:
            log.warning("entities.%s: %d of %d entities have no feature (their embedding is 0)",
                        t, bare, len(names))
        hidden = feature_type_name(t)
        ds.entity_types.append(hidden)
        ds.entity_names[hidden] = vocab
        ds.features[t] = (ids, weight)


def model_extras(cfg: TrainConfig, ds: Dataset) -> dict:
    """ModelSpec's featurized, encoder_hidden, frozen_types and frozen_relations for this run."""
    types = ds.entity_types
    feat = [t for t in featurized_types(cfg) if feature_type_name(t) in types]
    frozen = []
    for t in cfg.training.frozen_types:
        if t not in types:
            raise ConfigError(f"training.frozen_types: {t!r} is not an entity type of the data "
                              f"({', '.join(types)})")
        frozen.append(types.index(t))
        if t in feat:
            frozen.append(types.index(feature_type_name(t)))
    rels = []
    for r in cfg.training.frozen_relations:
        if r not in ds.relation_names:
            shown = ", ".join(ds.relation_names[:10]) + (", ..." if ds.num_relations > 10 else "")
            raise ConfigError(f"training.frozen_relations: {r!r} is not a relation of the data ({shown})")
        rels.append(ds.relation_names.index(r))
    return {
        "featurized": tuple((types.index(t), types.index(feature_type_name(t))) for t in feat),
        "encoder_hidden": tuple(cfg.entities[t].encoder_hidden for t in feat),
        "frozen_types": tuple(sorted(frozen)), "frozen_relations": tuple(sorted(rels)),
    }
