"""What the test modules share (importable as `helpers`: pyproject's pytest `pythonpath` puts tests/
on sys.path, so it works under --import-mode=importlib too; no test module imports another).

- paths: REPO, CONF (the Hydra configs shipped in the package), shared_data() (the benchmark folder)
- configs: compose(overrides) (a composed DictConfig), config_of(overrides) (a TrainConfig),
  SMALL / cfg_of(overrides) (the small toy graph most end-to-end tests train on)
- models: model_of(**overrides) (the one place that calls Model(...) with every keyword)
- trainers: trainer_of(cfg, store) (a Trainer on the config's dataset)
- a tiny imported-then-trained run shared by export, predict and neighbours (tiny_run, cached per
  session and setting), and a plain-numpy scorer that reads an npy export (numpy_filtered_mrr)
- png_pixels(path): a PNG decoded to an RGBA array (plots are checked by their pixels)
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from jgraph.config import CONF_DIR

REPO = Path(__file__).resolve().parent.parent
CONF = CONF_DIR  # the configs shipped in the package (jgraph/conf)


def shared_data() -> Path | None:
    """The folder with FB15k-237/, UMLS/, ... : $JGRAPH_DATA, else ../shared/data beside the repo."""
    for cand in (os.environ.get("JGRAPH_DATA"), REPO.parent / "shared" / "data"):
        if cand and (Path(cand) / "UMLS" / "train.tsv.gz").is_file():
            return Path(cand)
    return None


# ---------------------------------------------------------------- configs
def compose(overrides: list[str] | tuple[str, ...] = (), config_name: str = "train",
            return_hydra_config: bool = False):
    """The composed (untyped) Hydra config of conf/<config_name>.yaml with the overrides."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    from jgraph.config import register_configs

    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base=None):
        return hydra_compose(config_name=config_name, overrides=list(overrides),
                             return_hydra_config=return_hydra_config)


def config_of(overrides: list[str] | tuple[str, ...] = ()):
    """The typed TrainConfig of conf/train.yaml with the overrides."""
    from jgraph.config import to_config

    return to_config(compose(overrides))


SMALL = [
    "data.toy.num_entities=400", "data.toy.num_edges=30000", "data.toy.num_relations=8",
    "training.progress=false", "model.dimension=16", "training.num_epochs=4",
    "eval.batch_size=128",
]


def cfg_of(overrides: list[str] | tuple[str, ...] = ()):
    """The small toy graph (400 entities, 8 relations, 30k edges, d=16, 4 epochs) plus overrides."""
    return config_of([*SMALL, *overrides])


# ---------------------------------------------------------------- models and trainers
MODEL_DEFAULTS: dict[str, Any] = dict(
    dimension=4, operator_of_relation=["none"], relation_types=np.zeros((1, 2)), num_types=1,
    comparator="dot", loss="ranking", margin=0.1,
)


def model_of(**overrides):
    """A Model of a ModelSpec with MODEL_DEFAULTS (d=4, one relation with no operator, one type,
    dot, ranking, no regularization; relation weights 1) and the overrides."""
    import models  # noqa: F401  (registers the built-in operators, comparators, losses)
    from jgraph.core.model import Model, ModelSpec

    return Model(ModelSpec(**{**MODEL_DEFAULTS, **overrides}))


def trainer_of(cfg, store: Any = None):
    """A Trainer of the config on its dataset (plugins loaded), its checkpoints in `store`
    (default: in memory)."""
    from jgraph.assembly import load_plugins
    from jgraph.data.dataset import load_dataset
    from jgraph.storage.checkpoint import CheckpointStore
    from jgraph.train.trainer import Trainer

    load_plugins(cfg.plugins)
    return Trainer(cfg, load_dataset(cfg), store if store is not None else CheckpointStore("memory://"))


# ---------------------------------------------------------------- plots
def png_pixels(path: Path) -> np.ndarray:
    """A PNG file decoded to float RGBA [H, W, 4] in [0, 1] (raises if it is not a valid PNG)."""
    import matplotlib.image

    return np.asarray(matplotlib.image.imread(str(path)))


def assert_plot(path: Path, min_size: tuple[int, int] = (200, 150), min_colors: int = 3) -> np.ndarray:
    """The PNG decodes, is at least min_size (w, h) pixels, and draws something: not one flat
    colour, at least `min_colors` distinct colours, and a tenth of its pixels not background."""
    px = png_pixels(path)
    h, w = px.shape[:2]
    assert w >= min_size[0] and h >= min_size[1], (path, px.shape)
    rgb = np.round(px[..., :3] * 255).astype(np.int32)
    flat = rgb.reshape(-1, 3)
    colors, counts = np.unique(flat, axis=0, return_counts=True)
    assert len(colors) >= min_colors, (path, len(colors))
    background = counts.max() / flat.shape[0]
    assert background < 0.99, (path, background)  # not a blank canvas
    return px


# ---------------------------------------------------------------- the tiny imported run
_RUNS: dict[tuple, Path] = {}

TRAIN = ["training.progress=false", "training.num_epochs=2", "training.batch_size=200",
         "negatives.num_batch_negs=20", "negatives.num_uniform_negs=20", "eval.batch_size=64",
         "eval.splits=[test]", "eval.protocols=[filtered]"]


def write_toy_tsv(folder: Path, n_ent: int = 150, n_rel: int = 6, n_edges: int = 3000) -> dict[str, Path]:
    """The generated toy graph as entity-named TSV files (90/5/5 split)."""
    from jgraph.config import ToyConfig
    from jgraph.data import toy

    e = toy.generate(ToyConfig(num_entities=n_ent, num_relations=n_rel, num_edges=n_edges, seed=1))
    rows = [f"ent{h}\trel{r}\tent{t}\n" for h, r, t in zip(e["lhs"], e["rel"], e["rhs"], strict=True)]
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(rows))
    n = len(rows) // 20
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, idx in (("valid", perm[:n]), ("test", perm[n : 2 * n]), ("train", perm[2 * n :])):
        out[split] = folder / f"{split}.tsv"
        out[split].write_text("".join(rows[i] for i in idx))
    return out


RECIPROCAL = ("model=complex", "model.reciprocal=true")


def tiny_run(tmp_root: Path, parts: int = 1, model: tuple[str, ...] = RECIPROCAL,
             extra: tuple[str, ...] = ()) -> Path:
    """Run directory of a model trained on the imported toy graph (cached per setting)."""
    key = (parts, model, extra)
    if key in _RUNS:
        return _RUNS[key]
    from jgraph.data.importer import ImportSpec, run_import
    from jgraph.train.run import run

    base = tmp_root / f"run{len(_RUNS)}"
    files = write_toy_tsv(base / "tsv")
    run_import(ImportSpec(out=str(base / "data" / "toy"), train=[str(files["train"])],
                          valid=[str(files["valid"])], test=[str(files["test"])],
                          partitions={"*": parts}), log=lambda m: None)
    cfg = config_of(["data.format=prepared", f"data.root={base / 'data'}", "data.path=toy", "data.name=toy",
                     f"entities.entity.num_partitions={parts}", "model.dimension=16", *TRAIN, *model, *extra])
    run(cfg, str(base / "run"))
    _RUNS[key] = base / "run"
    return _RUNS[key]


# ---------------------------------------------------------------- numpy scorer over an npy export
def _operator(params: dict, kind: str, r: np.ndarray, x: np.ndarray) -> np.ndarray:
    if kind == "none":
        return x
    if kind == "translation":
        return x + params["translation"][r]
    if kind == "diagonal":
        return x * params["diagonal"][r]
    if kind == "complex_diagonal":
        h = x.shape[-1] // 2
        re, im, a, b = x[..., :h], x[..., h:], params["real"][r], params["imag"][r]
        return np.concatenate([re * a - im * b, re * b + im * a], axis=-1)
    if kind == "linear":
        return np.einsum("...ij,...j->...i", params["matrix"][r], x)
    raise NotImplementedError(kind)


def _compare(name: str, f: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Scores [B, N] of queries f [B, D] against candidates c [N, D] (or [B, N, D])."""
    if name == "cos":
        f = f / np.maximum(np.linalg.norm(f, axis=-1, keepdims=True), 1e-15)
        c = c / np.maximum(np.linalg.norm(c, axis=-1, keepdims=True), 1e-15)
        name = "dot"
    dot = np.einsum("bd,...nd->bn", f, c) if c.ndim == 2 else np.einsum("bd,bnd->bn", f, c)
    if name == "dot":
        return dot
    sq = np.maximum((f * f).sum(-1)[:, None] + (c * c).sum(-1)[..., None, :] - 2 * dot, 0)
    return -sq if name == "squared_l2" else -np.sqrt(np.maximum(sq, 1e-30))


def read_npy_export(export_dir: Path) -> tuple[dict, np.ndarray, dict]:
    """(manifest, the one entity type's rows, {side: {operator kind: {param: array}}}) of an npy
    export."""
    man = json.loads((export_dir / "manifest.json").read_text())
    (etype,) = man["entity_types"]
    emb = np.load(export_dir / f"{etype}.npy")
    params: dict = {side: {} for side in man["relation_sides"]}
    for f in export_dir.glob("*.npy"):
        parts = f.name[:-4].split(".")
        if len(parts) == 3:
            side, kind, param = parts
            params[side].setdefault(kind, {})[param] = np.load(f)
    return man, emb, params


def numpy_query_scores(man: dict, emb: np.ndarray, params: dict, side: int, fixed: np.ndarray,
                       r: int) -> np.ndarray:
    """Scores [B, N] of every entity as the replaced side of queries (fixed entity ids [B],
    relation r): side 1 scores (fixed, r, ?), side 0 (?, r, fixed); from an npy export alone."""
    kind = man["relations"][r]["operator"]
    comp = man["comparator"]
    rs = np.full(len(fixed), r)
    if side == 0:
        f = _operator(params["rhs"].get(kind, {}), kind, rs, emb[fixed])
        return _compare(comp, f, emb)
    if man["reciprocal"]:
        f = _operator(params["lhs"].get(kind, {}), kind, rs, emb[fixed])
        return _compare(comp, f, emb)
    c = _operator(params["rhs"].get(kind, {}), kind, np.array([r]), emb)
    return _compare(comp, emb[fixed], c)


def numpy_filtered_mrr(export_dir: Path, edges: dict[str, tuple[np.ndarray, ...]]) -> float:
    """Filtered MRR (realistic ties, both sides) of the `test` edges (ids), from the export alone.

    `edges`: split -> (lhs, rel, rhs) entity-id arrays; one entity type."""
    man, emb, params = read_npy_export(export_dir)
    known: dict[int, dict] = {0: {}, 1: {}}
    for lhs, rel, rhs in edges.values():
        for h, r, t in zip(lhs.tolist(), rel.tolist(), rhs.tolist(), strict=True):
            known[0].setdefault((t, r), set()).add(h)
            known[1].setdefault((h, r), set()).add(t)
    rr = []
    lhs, rel, rhs = edges["test"]
    for side in (0, 1):
        for r in np.unique(rel):
            m = rel == r
            fixed, target = (rhs[m], lhs[m]) if side == 0 else (lhs[m], rhs[m])
            scores = numpy_query_scores(man, emb, params, side, fixed, int(r))
            for q in range(len(target)):
                s, pos = scores[q], scores[q, target[q]]
                drop = np.zeros(len(s), bool)
                drop[list(known[side][(int(fixed[q]), int(r))])] = True
                drop[target[q]] = True
                rank = 1 + np.sum((s > pos) & ~drop) + 0.5 * np.sum((s == pos) & ~drop)
                rr.append(1.0 / rank)
    return float(np.mean(rr))


C0, C1 = (31, 119, 180), (255, 127, 14)  # matplotlib's first two cycle colours (blue, orange)


def color_share(px: np.ndarray, rgb: tuple[int, int, int], tol: int = 12) -> float:
    """The share of a decoded PNG's pixels within `tol` (per channel, 0-255) of the colour `rgb`."""
    got = np.round(px[..., :3] * 255).astype(np.int32)
    return float((np.abs(got - np.asarray(rgb)) <= tol).all(-1).mean())
