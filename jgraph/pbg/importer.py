"""A PyTorch-BigGraph run as a jgraph run: its config, checkpoint, names and (optionally) edges.

Partitions map exactly: PBG's entity at row `offset` of `embeddings_{type}_{part}` becomes the jgraph
entity at row `offset` of partition `part`, i.e. id `layout.members[part][offset]` of jgraph's
seeded PartitionLayout (PBG and jgraph both cut a type of n entities into ranges of
ceil(p n / P)); a checkpoint cut otherwise is refused. Relation parameters map one to one
(`PARAMS`): standard mode has rhs operators only (jgraph's "rhs"), dynamic relations have both
(PBG's lhs/rhs operators = jgraph's reciprocal "lhs"/"rhs"). The run is written through
CheckpointStore and keeps its names (jgraph.mapping), so predict, export, neighbours and warm starts
need nothing else; PBG's edge paths, when given, become a prepared dataset inside the run
(RUN/data) for `evaluate`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from omegaconf import OmegaConf

from jgraph.assembly import INSTALLED_PLUGINS, build_model, fingerprint, load_plugins, state_arrays
from jgraph.config import TrainConfig, to_config
from jgraph.core.step import init_state
from jgraph.data.graph import Dataset, Edges
from jgraph.data.prepared import bucket_entity_ids
from jgraph.mapping import keep_mapping
from jgraph.pbg import checkpoint as files
from jgraph.pbg.config import PbgError, check_importable, option, read_config, to_jgraph
from jgraph.plan.partition import PartitionLayout
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.validation import validate

log = logging.getLogger("jgraph")

# jgraph parameter name -> PBG parameter name (static operator, dynamic operator)
PARAMS: dict[str, dict[str, tuple[str, str]]] = {
    "none": {},
    "translation": {"translation": ("translation", "translations")},
    "diagonal": {"diagonal": ("diagonal", "diagonals")},
    "linear": {"matrix": ("linear_transformation", "linear_transformations")},
    "affine": {"matrix": ("linear_transformation", "linear_transformations"),
               "translation": ("translation", "translations")},
    "complex_diagonal": {"real": ("real", "real"), "imag": ("imag", "imag")},
}
# checkpoints from before PBG's D14024710 stored affine's matrix transposed under this name
OLD_MATRIX = ("rotation", "rotations")


def import_pbg(config_path: str, checkpoint_dir: str, out: str, entity_path: str | None = None,
               edge_paths: list[str] | None = None, splits: list[str] | None = None,
               seed: int = 0) -> dict[str, Any]:
    """Write the jgraph run `out` from a PBG config and checkpoint directory; returns a summary.
    edge_paths None: the config's, where they exist; [] : none (the run is then not evaluable)."""
    pcfg = read_config(config_path)
    check_importable(pcfg, config_path)
    ckpt = Path(checkpoint_dir)
    version = files.checkpoint_version(ckpt)
    ent_path = Path(entity_path or pcfg.get("entity_path") or "")
    if not (entity_path or pcfg.get("entity_path")):
        raise PbgError(f"{config_path}: no entity_path; give --entity-path")
    if not ent_path.is_dir():
        raise PbgError(f"{ent_path}: no such entity path (give --entity-path)")
    run = Path(out)
    if (run / "checkpoint" / "checkpoint.json").exists():
        raise PbgError(f"{run}: already holds a jgraph run; import into a new directory")

    types = list(pcfg["entities"])
    parts = {t: int(pcfg["entities"][t]["num_partitions"]) for t in types}
    read = {t: [files.entity_partition(ent_path, t, p) for p in range(parts[t])] for t in types}
    counts = {t: sum(c for c, _ in read[t]) for t in types}
    layout = PartitionLayout.build(counts, parts, seed)
    names: dict[str, pa.Array | None] = {}
    for t, tp in zip(types, layout.types, strict=True):
        sizes = [c for c, _ in read[t]]
        if sizes != tp.sizes.tolist():
            raise PbgError(f"{ent_path}: entity type {t!r} has partitions of {sizes} entities; jgraph's "
                           f"even split of {counts[t]} is {tp.sizes.tolist()} (PBG's importer's too)")
        names[t] = _names_by_id(tp, [n for _, n in read[t]])

    relations = _relations(pcfg, ent_path)
    rel_types = np.array([[types.index(r["lhs"]), types.index(r["rhs"])] for r in relations],
                         np.int32).reshape(-1, 2)
    edge_sources = _edge_sources(pcfg, edge_paths, splits, config_path)
    data = {"format": "prepared", "name": Path(config_path).stem, "root": str(run.resolve()),
            "path": "data", "valid": None, "test": None,
            "download_hint": "(the PBG run was imported without edges: import it again with "
                             "--edge-paths to evaluate it)"}
    cfg = _train_config(to_jgraph(pcfg, relations, data), seed)
    ds = Dataset(data["name"], types, names, [r["name"] for r in relations], rel_types,
                 entity_counts=counts, partitions=parts, partition_seed=seed)

    load_plugins(list(INSTALLED_PLUGINS))  # the scorers (jgraph's own only)
    model = build_model(cfg, ds)
    state = init_state(model, seed, cfg.training.rng_impl, cfg.optimizer.relation_lr or cfg.optimizer.lr,
                       cfg.optimizer.eps)
    params = _relation_params(files.model_parameters(ckpt, version), state.params, relations,
                              types, bool(option(pcfg, "dynamic_relations")), ckpt / f"model.v{version}.h5")
    import jax.numpy as jnp
    from jax import tree_util

    state = state._replace(params=tree_util.tree_map(jnp.asarray, params))

    loc = str(run / "checkpoint")
    run.mkdir(parents=True, exist_ok=True)
    store = CheckpointStore(loc, writer=True)
    try:
        dim = cfg.model.dimension
        for tp in layout.types:
            for p in range(tp.num_partitions):
                rows = np.zeros((tp.capacity, dim), np.float32)
                rows[: tp.sizes[p]] = files.embeddings(ckpt, version, tp.name, p, int(tp.sizes[p]), dim)
                store.write_partition(tp.name, p, rows, np.zeros(tp.capacity, np.float32),
                                      count=int(tp.sizes[p])).result()
        store.write_params(state_arrays(state))
        progress = {"epoch": cfg.training.num_epochs, "chunk": 0, "bucket": 0}
        source = {"config": str(Path(config_path).resolve()), "checkpoint": str(ckpt.resolve()),
                  "version": version}
        store.commit(progress, {"fingerprint": fingerprint(cfg, ds), "history": [],
                                "config": asdict(cfg), "processes": 1, "imported_from_pbg": source})
    finally:
        store.close()
    keep_mapping(loc, cfg, ds)
    edges = _write_edges(run / "data", ds, layout, edge_sources) if edge_sources else {}
    log.info("imported PBG checkpoint %s (version %d) into %s", ckpt, version, run)
    return {"run": str(run), "version": version, "entities": counts, "relations": len(relations),
            "reciprocal": cfg.model.reciprocal, "edges": edges}


def _train_config(d: dict[str, Any], seed: int) -> TrainConfig:
    d["training"]["seed"] = seed
    try:
        cfg = to_config(OmegaConf.create(d))
        validate(cfg)
    except (ValueError, KeyError) as e:
        raise PbgError(f"the imported config is not a valid jgraph config: {e}") from None
    return cfg


def _names_by_id(tp, per_part: list[list[str] | None]) -> pa.Array | None:
    """The names of one type in jgraph id order (None when PBG kept no names for it)."""
    if all(n is None for n in per_part):
        return None
    if any(n is None for n in per_part):
        missing = [p for p, n in enumerate(per_part) if n is None]
        raise PbgError(f"entity type {tp.name!r}: entity_names files of partitions {missing} missing "
                       "while the others exist")
    out = np.empty(tp.count, object)
    for members, names in zip(tp.members, per_part, strict=True):
        out[members] = names
    arr = pa.array(out, pa.string())
    if len(set(out.tolist())) != tp.count:
        raise PbgError(f"entity type {tp.name!r}: its names are not unique")
    return arr


def _relations(pcfg: dict[str, Any], ent_path: Path) -> list[dict[str, Any]]:
    """{name, lhs, rhs, weight, operator} per relation id."""
    if option(pcfg, "dynamic_relations"):
        t = pcfg["relations"][0]
        count, names = files.dynamic_relations(ent_path)
        names = names or [str(i) for i in range(count)]
        rels = [{"name": n, "lhs": t["lhs"], "rhs": t["rhs"], "weight": float(t.get("weight", 1.0)),
                 "operator": t.get("operator", "none")} for n in names]
    else:
        rels = [{"name": str(r.get("name", i)), "lhs": r["lhs"], "rhs": r["rhs"],
                 "weight": float(r.get("weight", 1.0)), "operator": r.get("operator", "none")}
                for i, r in enumerate(pcfg["relations"])]
    seen = [r["name"] for r in rels]
    dup = sorted({n for n in seen if seen.count(n) > 1})
    if dup:
        raise PbgError(f"relation names {dup[:5]} occur more than once (jgraph finds relations by name)")
    return rels


def _relation_params(stored: dict[str, np.ndarray] | None, template: dict, relations: list[dict],
                     types: list[str], dynamic: bool, path: Path) -> dict:
    """jgraph's parameter tree (numpy) with PBG's operator parameters and global embeddings."""
    params = {k: ({kind: {n: np.array(a) for n, a in leaves.items()} for kind, leaves in v.items()}
                  if isinstance(v, dict) else np.array(v)) for k, v in template.items()}
    stored = stored or {}

    def get(name: str, shape: tuple[int, ...], old: bool = False) -> np.ndarray:
        if name not in stored:
            raise PbgError(f"{path}: no parameter 'model/{name}'" if stored or path.is_file()
                           else f"{path}: missing (the relations' operators have parameters)")
        a = np.asarray(stored[name], np.float32)
        a = np.swapaxes(a, -1, -2) if old else a
        if a.shape != shape:
            raise PbgError(f"{path}: model/{name} has shape {a.shape}, expected {shape}")
        return a

    sides = ("lhs", "rhs") if dynamic else ("rhs",)
    for side in sides:
        for i, r in enumerate(relations):
            kind = r["operator"]
            for ours, (static, dyn) in PARAMS[kind].items():
                target = params[side][kind][ours]
                theirs = dyn if dynamic else static
                base = f"relations/{0 if dynamic else i}/operator/{side}/"
                shape = target.shape if dynamic else target.shape[1:]
                old = ours == "matrix" and kind == "affine" and base + theirs not in stored \
                    and base + OLD_MATRIX[dynamic] in stored
                value = get(base + (OLD_MATRIX[dynamic] if old else theirs), shape, old)
                if dynamic:
                    target[...] = value
                else:
                    target[i] = value
            if dynamic:
                break  # one template: every relation's rows were set at once
    if "global" in params:
        for t, name in enumerate(types):
            params["global"][t] = get(f"entities/{name}/global_embedding", params["global"].shape[1:])
    return params


def _edge_sources(pcfg: dict[str, Any], edge_paths: list[str] | None, splits: list[str] | None,
                  where: str) -> list[tuple[str, Path]]:
    """(split, edge path) pairs to import: --edge-paths, else the config's edge_paths that exist."""
    given = edge_paths is not None
    if given and not edge_paths:
        return []
    paths = [Path(p) for p in (edge_paths if given else pcfg.get("edge_paths") or [])]
    if not given and not all(p.is_dir() for p in paths):
        if paths:
            log.warning("%s: edge paths %s not found: the run is imported without edges (give "
                        "--edge-paths to evaluate it)", where, [str(p) for p in paths if not p.is_dir()])
        return []
    for p in paths:
        if not p.is_dir():
            raise PbgError(f"{p}: no such edge path")
    names = splits or _split_names(paths)
    if len(names) != len(paths):
        raise PbgError(f"{len(paths)} edge paths but {len(names)} split names (--splits): give one per path")
    if "train" not in names or len(set(names)) != len(names):
        raise PbgError(f"--splits {names}: name each edge path once, one of them 'train'")
    return list(zip(names, paths, strict=True))


def _split_names(paths: list[Path]) -> list[str]:
    """train / valid / test as the paths' names say (PBG's examples: ...-train_partitioned), else
    in that order."""
    guess = [next((s for s in ("train", "valid", "test") if s in p.name.lower()), None) for p in paths]
    if None not in guess and len(set(guess)) == len(guess):
        return guess  # type: ignore[return-value]
    return ["train", "valid", "test"][: len(paths)]


def _write_edges(location: Path, ds: Dataset, layout: PartitionLayout,
                 sources: list[tuple[str, Path]]) -> dict[str, int]:
    """PBG's edge buckets as a prepared dataset: train stays bucketed (same partitions, same
    offsets), the other splits become entity ids."""
    from jgraph.data.prepared import PreparedWriter

    lhs_parts = max(layout.types[t].num_partitions for t in np.unique(ds.relation_types[:, 0]))
    rhs_parts = max(layout.types[t].num_partitions for t in np.unique(ds.relation_types[:, 1]))
    buckets = {name: [((i, j), files.edge_bucket(path, i, j)) for i in range(lhs_parts)
                      for j in range(rhs_parts)] for name, path in sources}
    for name, path in sources:
        for (i, j), (lhs, rhs, rel, _) in buckets[name]:
            _check_offsets(path / f"edges_{i}_{j}.h5", ds, layout, (i, j), lhs, rhs, rel)
    has_w = {w is not None for _, (lhs, _, _, w) in buckets["train"] if len(lhs)}
    if len(has_w) > 1:
        raise PbgError(f"{dict(sources)['train']}: some buckets have weights and some not")
    rels = [{"name": n, "lhs": ds.entity_types[a], "rhs": ds.entity_types[b]}
            for n, (a, b) in zip(ds.relation_names, ds.relation_types, strict=True)]
    w = PreparedWriter(str(location.resolve()), name=ds.name, entity_counts=dict(ds.entity_counts),
                       partitions=dict(ds.partitions), partition_seed=ds.partition_seed, relations=rels,
                       weight=has_w == {True})
    counts = {}
    for name, _ in sources:
        if name == "train":
            for b, (lhs, rhs, rel, wt) in buckets[name]:
                w.train.write(b, lhs, rhs, rel, wt if has_w == {True} else None)
            counts[name] = sum(len(e[0]) for _, e in buckets[name])
            continue
        pieces = [Edges(bucket_entity_ids(ds, layout, b[0], lhs, rel, 0),
                        bucket_entity_ids(ds, layout, b[1], rhs, rel, 1), rel, wt)
                  for b, (lhs, rhs, rel, wt) in buckets[name]]
        edges = Edges.concat(pieces) if pieces else Edges(np.zeros(0, np.int64), np.zeros(0, np.int64),
                                                          np.zeros(0, np.int32))
        w.write_split(name, edges)
        counts[name] = len(edges)
    for t in ds.entity_types:
        if ds.entity_names.get(t) is not None:
            w.write_names(t, ds.entity_names[t])
    w.finish()
    return counts


def _check_offsets(path: Path, ds: Dataset, layout: PartitionLayout, bucket: tuple[int, int],
                   lhs: np.ndarray, rhs: np.ndarray, rel: np.ndarray) -> None:
    if len(rel) and (rel.min() < 0 or rel.max() >= ds.num_relations):
        raise PbgError(f"{path}: relation id {int(rel.max())} out of range ({ds.num_relations} relations)")
    for side, off in ((0, lhs), (1, rhs)):
        types = ds.relation_types[rel, side]
        for t in np.unique(types):
            tp = layout.types[t]
            part = bucket[side] if tp.num_partitions > 1 else 0
            o = off[types == t]
            if part >= tp.num_partitions or (len(o) and (o.min() < 0 or o.max() >= tp.sizes[part])):
                raise PbgError(f"{path}: {('lhs', 'rhs')[side]} offsets outside partition {part} of "
                               f"{tp.name!r} ({int(tp.sizes[min(part, tp.num_partitions - 1)])} entities)")
