"""Reading PyTorch-BigGraph's files (pbg-reference §4): the checkpoint directory's HDF5 tables and
relation parameters, the entity path's counts and names, and the edge paths' buckets.

    CHECKPOINT/checkpoint_version.txt           the committed version N
    CHECKPOINT/embeddings_{type}_{part}.vN.h5   dataset `embeddings` float32 [count, D] (row = offset)
    CHECKPOINT/model.vN.h5                      group `model`: relations/{idx}/operator/{side}/{param},
                                                entities/{type}/global_embedding
    ENTITY_PATH/entity_count_{type}_{part}.txt  ENTITY_PATH/entity_names_{type}_{part}.json
    ENTITY_PATH/dynamic_rel_count.txt           ENTITY_PATH/dynamic_rel_names.json
    EDGE_PATH/edges_{lhs part}_{rhs part}.h5    int64 `lhs`, `rhs` (offsets in partitions), `rel`
Every HDF5 file carries the attribute format_version = 1. The optimizer states PBG stores
(`optimizer/state_dict`, a torch pickle) are not read: unpickling runs code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from jgraph.pbg.config import PbgError

FORMAT_VERSION = 1


def _h5py():
    try:
        import h5py
    except ImportError:
        raise PbgError("reading PBG checkpoints needs h5py: pip install 'jgraph[pbg]'") from None
    return h5py


def _open(path: Path):
    if not path.is_file():
        raise PbgError(f"{path}: missing")
    h5py = _h5py()
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise PbgError(f"{path}: not an HDF5 file ({e})") from None
    got = f.attrs.get("format_version")
    if got is None or int(np.asarray(got)) != FORMAT_VERSION:
        f.close()
        raise PbgError(f"{path}: format_version {None if got is None else int(np.asarray(got))}, "
                       f"this importer reads PBG's format {FORMAT_VERSION} (version mismatch)")
    return f


def checkpoint_version(ckpt: Path) -> int:
    """The committed version N (checkpoint_version.txt)."""
    f = ckpt / "checkpoint_version.txt"
    if not ckpt.is_dir():
        raise PbgError(f"{ckpt}: no such PBG checkpoint directory")
    if not f.is_file():
        raise PbgError(f"{f}: missing (not a PBG checkpoint directory, or nothing committed yet)")
    text = f.read_text().strip()
    if not text.isdigit() or int(text) < 1:
        raise PbgError(f"{f}: {text!r} is no committed version (PBG writes a positive integer)")
    return int(text)


def _versioned(ckpt: Path, stem: str, version: int) -> Path:
    """CHECKPOINT/{stem}.v{version}.h5, or a PbgError naming the versions that are there instead."""
    path = ckpt / f"{stem}.v{version}.h5"
    if path.is_file():
        return path
    found = sorted(int(m.group(1)) for p in ckpt.glob(f"{stem}.v*.h5")
                   if (m := re.fullmatch(re.escape(stem) + r"\.v(\d+)\.h5", p.name)))
    there = f"; the directory has {', '.join(f'v{v}' for v in found)}" if found else ""
    raise PbgError(f"{path}: missing (checkpoint_version.txt says {version}{there}: version mismatch)")


def entity_partition(entity_path: Path, etype: str, part: int) -> tuple[int, list[str] | None]:
    """(count, names or None) of one partition of an entity type."""
    count_file = entity_path / f"entity_count_{etype}_{part}.txt"
    names_file = entity_path / f"entity_names_{etype}_{part}.json"
    names = None
    if names_file.is_file():
        try:
            names = json.loads(names_file.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise PbgError(f"{names_file}: not a JSON list of names ({e})") from None
        if not isinstance(names, list):
            raise PbgError(f"{names_file}: not a JSON list of names")
        names = [str(n) for n in names]
    if count_file.is_file():
        text = count_file.read_text().strip()
        if not text.isdigit():
            raise PbgError(f"{count_file}: {text[:40]!r} is not an entity count")
        count = int(text)
        if names is not None and len(names) != count:
            raise PbgError(f"{names_file}: {len(names)} names, {count_file.name} says {count}")
        return count, names
    if names is not None:
        return len(names), names
    raise PbgError(f"{count_file}: missing (and no {names_file.name}); point --entity-path at PBG's "
                   "entity path")


def dynamic_relations(entity_path: Path) -> tuple[int, list[str] | None]:
    """(count, names or None) of a dynamic-relations graph."""
    f = entity_path / "dynamic_rel_count.txt"
    if not f.is_file():
        raise PbgError(f"{f}: missing (dynamic_relations needs it); point --entity-path at PBG's entity path")
    text = f.read_text().strip()
    if not text.isdigit() or int(text) < 1:
        raise PbgError(f"{f}: {text[:40]!r} is not a relation count")
    count = int(text)
    nf = entity_path / "dynamic_rel_names.json"
    if not nf.is_file():
        return count, None
    try:
        names = json.loads(nf.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise PbgError(f"{nf}: not a JSON list of names ({e})") from None
    if not isinstance(names, list) or len(names) != count:
        raise PbgError(f"{nf}: {len(names) if isinstance(names, list) else 'no'} names, "
                       f"dynamic_rel_count.txt says {count}")
    return count, [str(n) for n in names]


def embeddings(ckpt: Path, version: int, etype: str, part: int, count: int, dim: int) -> np.ndarray:
    """float32 [count, dim]: the rows of one partition (row = the entity's offset)."""
    path = _versioned(ckpt, f"embeddings_{etype}_{part}", version)
    with _open(path) as f:
        if "embeddings" not in f:
            raise PbgError(f"{path}: no dataset 'embeddings'")
        data = f["embeddings"]
        if tuple(data.shape) != (count, dim):
            raise PbgError(f"{path}: embeddings of shape {tuple(data.shape)}, expected ({count}, {dim}) "
                           "(the entity count files and the config's dimension)")
        return np.asarray(data[...], np.float32)


def model_parameters(ckpt: Path, version: int) -> dict[str, np.ndarray] | None:
    """The `model` group of model.vN.h5 by public name (relations/0/operator/rhs/real, ...); None
    when the checkpoint has no model file."""
    path = ckpt / f"model.v{version}.h5"
    if not path.is_file():
        if any(ckpt.glob("model.v*.h5")):
            _versioned(ckpt, "model", version)  # raises, naming the versions there
        return None
    out: dict[str, np.ndarray] = {}
    h5py = _h5py()
    with _open(path) as f:
        if "model" in f:
            f["model"].visititems(lambda name, obj: out.__setitem__(name, np.asarray(obj[...]))
                                  if isinstance(obj, h5py.Dataset) else None)
    return out


def edge_bucket(edge_path: Path, i: int, j: int
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """(lhs offsets, rhs offsets, relation ids, weights or None) of bucket (i, j); empty if absent."""
    path = edge_path / f"edges_{i}_{j}.h5"
    if not path.is_file():
        e = np.zeros(0, np.int64)
        return e, e, e.astype(np.int32), None
    with _open(path) as f:
        for k in ("lhs", "rhs", "rel"):
            if k not in f:
                raise PbgError(f"{path}: no dataset {k!r}")
        if "lhsd_data" in f or "rhsd_data" in f:
            raise PbgError(f"{path}: featurized edges are not importable")
        w = np.asarray(f["weight"][...], np.float32) if "weight" in f else None
        return (np.asarray(f["lhs"][...], np.int64), np.asarray(f["rhs"][...], np.int64),
                np.asarray(f["rel"][...], np.int32), w)
