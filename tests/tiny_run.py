"""A tiny imported-then-trained run shared by the export, predict and neighbours tests (built once
per session and setting), and a plain-numpy scorer that reads an npy export (for the round trip:
export -> numpy -> filtered MRR equal to the evaluator's)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from jgraph.config import ToyConfig
from jgraph.data import toy
from jgraph.data.importer import ImportSpec, run_import

REPO = Path(__file__).resolve().parent.parent
_RUNS: dict[tuple, Path] = {}

TRAIN = ["training.progress=false", "training.num_epochs=2", "training.batch_size=200",
         "negatives.num_batch_negs=20", "negatives.num_uniform_negs=20", "eval.batch_size=64",
         "eval.splits=[test]", "eval.protocols=[filtered]"]


def write_toy_tsv(folder: Path, n_ent: int = 150, n_rel: int = 6, n_edges: int = 3000) -> dict[str, Path]:
    """The generated toy graph as entity-named TSV files (90/5/5 split)."""
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
    from hydra import compose, initialize_config_dir

    from jgraph.config import register_configs, to_config
    from jgraph.train.run import run

    base = tmp_root / f"run{len(_RUNS)}"
    files = write_toy_tsv(base / "tsv")
    run_import(ImportSpec(out=str(base / "data" / "toy"), train=[str(files["train"])],
                          valid=[str(files["valid"])], test=[str(files["test"])],
                          partitions={"*": parts}), log=lambda m: None)
    register_configs()
    from jgraph.config import CONF_DIR as conf
    with initialize_config_dir(config_dir=str(conf), version_base=None):
        cfg = to_config(compose(config_name="train", overrides=[
            "data.format=prepared", f"data.root={base / 'data'}", "data.path=toy", "data.name=toy",
            f"entities.entity.num_partitions={parts}", "model.dimension=16", *TRAIN, *model, *extra]))
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


def numpy_filtered_mrr(export_dir: Path, edges: dict[str, tuple[np.ndarray, ...]]) -> float:
    """Filtered MRR (realistic ties, both sides) of the `test` edges (ids), from the export alone.

    `edges`: split -> (lhs, rel, rhs) entity-id arrays; one entity type."""
    man = json.loads((export_dir / "manifest.json").read_text())
    (etype,) = man["entity_types"]
    emb = np.load(export_dir / f"{etype}.npy")
    ops = [r["operator"] for r in man["relations"]]
    params = {side: {} for side in man["relation_sides"]}
    for f in export_dir.glob("*.npy"):
        parts = f.name[:-4].split(".")
        if len(parts) == 3:
            side, kind, param = parts
            params[side].setdefault(kind, {})[param] = np.load(f)
    known = {0: {}, 1: {}}
    for lhs, rel, rhs in edges.values():
        for h, r, t in zip(lhs.tolist(), rel.tolist(), rhs.tolist(), strict=True):
            known[0].setdefault((t, r), set()).add(h)
            known[1].setdefault((h, r), set()).add(t)
    rr = []
    lhs, rel, rhs = edges["test"]
    comp = man["comparator"]
    for side in (0, 1):
        for r in np.unique(rel):
            m = rel == r
            kind = ops[r]
            rs = np.full(m.sum(), r)
            if side == 0:
                f = _operator(params["rhs"].get(kind, {}), kind, rs, emb[rhs[m]])
                scores = _compare(comp, f, emb)
            elif man["reciprocal"]:
                f = _operator(params["lhs"].get(kind, {}), kind, rs, emb[lhs[m]])
                scores = _compare(comp, f, emb)
            else:
                c = _operator(params["rhs"].get(kind, {}), kind, np.array([r]), emb)
                scores = _compare(comp, emb[lhs[m]], c)
            fixed, target = (rhs[m], lhs[m]) if side == 0 else (lhs[m], rhs[m])
            for q in range(len(target)):
                s, pos = scores[q], scores[q, target[q]]
                drop = np.zeros(len(s), bool)
                drop[list(known[side][(int(fixed[q]), int(r))])] = True
                drop[target[q]] = True
                rank = 1 + np.sum((s > pos) & ~drop) + 0.5 * np.sum((s == pos) & ~drop)
                rr.append(1.0 / rank)
    return float(np.mean(rr))
