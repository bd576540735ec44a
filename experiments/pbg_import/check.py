#!/usr/bin/env python
"""PBG 1.0.0 trained on FB15k-237, imported with `jgraph import-pbg`, checked three ways.

    python experiments/pbg_import/check.py --pbg-python /tmp/pbgvenv/bin/python             # P = 1
    python experiments/pbg_import/check.py --pbg-python /tmp/pbgvenv/bin/python --parts 2   # P = 2

1. PBG (its own venv; pbg_side.py) converts FB15k-237 with its importer and trains with its FB15k
   settings (ComplEx: complex_diagonal, dynamic relations, dot, d=400, softmax, 50 batch + 1000
   uniform negatives, lr 0.1) for --epochs epochs; `jgraph import-pbg` imports config + checkpoint.
2. Scores: 1000 random (head, relation, tail) triples scored by PBG's own model loaded from its
   checkpoint (pbg_side.py score: PBG's forward) and by jgraph's scorer on the import, both
   directions (forward c(x, h_r(y)), reverse c(g_r(x), y)).
3. Filtered MRR: `jgraph evaluate` on the import vs a plain-numpy evaluation of PBG's raw h5
   tables (h5py only: no PBG, no jgraph code), both with pessimistic ties (PBG's rule).
4. Sampled: torchbiggraph_eval's protocol (pbg_side.py eval) vs jgraph's sampled protocol with
   the same negatives (50 batch + 1000 uniform per chunk of 50; random draws differ).
Writes WORK/p{P}/summary.json and prints it. Nothing is written in the repository.
"""

from __future__ import annotations

import argparse
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DATA = HERE.parents[2] / "shared" / "data" / "FB15k-237"


def sh(cmd: list[str], log: Path) -> float:
    t0 = time.perf_counter()
    with open(log, "w") as f:
        r = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT)
    if r.returncode:
        sys.exit(f"failed ({r.returncode}): {' '.join(cmd)}; see {log}")
    return time.perf_counter() - t0


def pbg_tables(work: Path) -> tuple[np.ndarray, dict[str, int], dict[str, int], dict[str, np.ndarray]]:
    """PBG's raw files read with h5py: every row [N, D] (partitions stacked), name -> row,
    relation name -> id, and the operator parameters {lhs_real, lhs_imag, rhs_real, rhs_imag}."""
    import h5py

    data, model = work / "data", work / "model"
    version = int((model / "checkpoint_version.txt").read_text())
    rows, index = [], {}
    p = 0
    while (data / f"entity_names_all_{p}.json").is_file():
        names = json.loads((data / f"entity_names_all_{p}.json").read_text())
        with h5py.File(model / f"embeddings_all_{p}.v{version}.h5", "r") as f:
            rows.append(f["embeddings"][...])
        index.update((n, len(index)) for n in names)
        p += 1
    rels = {n: i for i, n in enumerate(json.loads((data / "dynamic_rel_names.json").read_text()))}
    with h5py.File(model / f"model.v{version}.h5", "r") as f:
        ops = {f"{side}_{k}": f[f"model/relations/0/operator/{side}/{k}"][...]
               for side in ("lhs", "rhs") for k in ("real", "imag")}
    return np.concatenate(rows), index, rels, ops


def triples_of(split: str, index: dict[str, int], rels: dict[str, int]) -> np.ndarray:
    with gzip.open(DATA / f"{split}.tsv.gz", "rt") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return np.array([(index[h], rels[r], index[t]) for h, r, t in rows], np.int64)


def complex_op(x: np.ndarray, re: np.ndarray, im: np.ndarray) -> np.ndarray:
    h = x.shape[-1] // 2
    return np.concatenate([x[..., :h] * re - x[..., h:] * im, x[..., :h] * im + x[..., h:] * re], -1)


def numpy_filtered(work: Path) -> dict:
    """Filtered MRR / Hits of the test split from PBG's raw tables, pessimistic ties: rank = 1 +
    #{other candidates, not a known answer (train + valid + test), scoring >= the answer}."""
    emb, index, rels, ops = pbg_tables(work)
    splits = {s: triples_of(s, index, rels) for s in ("train", "valid", "test")}
    known = [{}, {}]  # side -> (fixed entity, rel) -> answers
    for e in splits.values():
        for h, r, t in e:
            known[1].setdefault((h, r), []).append(t)
            known[0].setdefault((t, r), []).append(h)
    test = splits["test"]
    out = {}
    for side in (0, 1):  # 0: (?, r, t) forward c(x, h_r(y)); 1: (h, r, ?) reverse c(g_r(x), y)
        ranks = []
        for s in range(0, len(test), 512):
            b = test[s : s + 512]
            fixed, ans = (b[:, 2], b[:, 0]) if side == 0 else (b[:, 0], b[:, 2])
            op = "rhs" if side == 0 else "lhs"
            q = complex_op(emb[fixed], ops[f"{op}_real"][b[:, 1]], ops[f"{op}_imag"][b[:, 1]])
            scores = q @ emb.T
            true = scores[np.arange(len(b)), ans].copy()
            for i, (f, r) in enumerate(zip(fixed, b[:, 1], strict=True)):
                scores[i, known[side][(f, r)]] = -np.inf
            scores[np.arange(len(b)), ans] = -np.inf
            ranks.append(1 + (scores >= true[:, None]).sum(1))
        ranks = np.concatenate(ranks).astype(np.float64)
        out[("lhs", "rhs")[side]] = {"mrr": float((1 / ranks).mean()), "mr": float(ranks.mean()),
                                     "hits@1": float((ranks <= 1).mean()),
                                     "hits@10": float((ranks <= 10).mean()), "count": len(ranks)}
    out["avg"] = {k: (out["lhs"][k] + out["rhs"][k]) / 2 for k in ("mrr", "mr", "hits@1", "hits@10")}
    return out


def jgraph_scores(run_dir: Path, triples: list[list[str]]) -> dict[str, np.ndarray]:
    import jax.numpy as jnp

    from jgraph.trained import load_run

    run = load_run(str(run_dir))
    names = {n: i for i, n in enumerate(run.ds.entity_names["all"].to_pylist())}
    rel = {n: i for i, n in enumerate(run.ds.relation_names)}
    h = np.array([names[a] for a, _, _ in triples])
    r = jnp.array([rel[b] for _, b, _ in triples])
    t = np.array([names[c] for _, _, c in triples])
    zeros = jnp.zeros(len(triples), jnp.int32)
    # side 0 replaces the head: fixed = tails, candidates = heads; side 1 the tail
    fwd = run.model.query_scores(run.params, run.emb[t], zeros, r, run.emb[h], jnp.int32(0), 0)
    rev = run.model.query_scores(run.params, run.emb[h], zeros, r, run.emb[t], jnp.int32(0), 1)
    return {"lhs_pos_scores": np.diagonal(np.asarray(fwd)), "rhs_pos_scores": np.diagonal(np.asarray(rev))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pbg-python", required=True, help="the python of PBG's venv")
    ap.add_argument("--work", type=Path, default=Path("/tmp/pbg_import"))
    ap.add_argument("--parts", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    work = a.work / f"p{a.parts}"
    work.mkdir(parents=True, exist_ok=True)
    side = [a.pbg_python, str(HERE / "pbg_side.py")]
    summary: dict = {"parts": a.parts, "epochs": a.epochs}
    if not (work / "model" / "checkpoint_version.txt").is_file():
        summary["pbg_train_seconds"] = sh([*side, "train", str(work), "--parts", str(a.parts),
                                           "--epochs", str(a.epochs)], work / "train.log")
    run = work / "run"
    if not (run / "checkpoint" / "checkpoint.json").is_file():
        summary["import_seconds"] = sh([sys.executable, "-m", "jgraph", "import-pbg", str(work / "config.py"),
                                        str(work / "model"), "--out", str(run)], work / "import.log")

    # 2. 1000 random triples, PBG's own model vs jgraph's scorer
    _, index, rels, _ = pbg_tables(work)
    rng = np.random.default_rng(0)
    ents, rnames = list(index), list(rels)
    pick = rng.integers(len(ents), size=(1000, 2)), rng.integers(len(rnames), size=1000)
    triples = [[ents[a], rnames[r], ents[b]] for (a, b), r in zip(*pick, strict=True)]
    (work / "triples.json").write_text(json.dumps(triples))
    sh([*side, "score", str(work), str(work / "triples.json"), str(work / "pbg_scores.json")],
       work / "score.log")
    theirs = json.loads((work / "pbg_scores.json").read_text())
    ours = jgraph_scores(run, triples)
    for k in ("lhs_pos_scores", "rhs_pos_scores"):
        want, got = np.asarray(theirs[k], np.float64), ours[k].astype(np.float64)
        rel = np.abs(got - want) / np.maximum(np.abs(want), 1e-6)
        summary[f"scores_{k}"] = {"max_abs_diff": float(np.abs(got - want).max()),
                                  "max_rel_diff": float(rel.max()),
                                  "score_range": [float(want.min()), float(want.max())]}

    # 3. filtered MRR: jgraph evaluate on the import vs numpy on PBG's raw tables
    ev = work / "jgraph_eval.json"
    summary["jgraph_eval_seconds"] = sh(
        [sys.executable, "-m", "jgraph", "evaluate", str(run), "--split", "test", "--protocol", "filtered",
         "sampled", "--out", str(ev), "--set", "eval.ties=pessimistic", "eval.num_batch_negs=50",
         "eval.num_uniform_negs=1000"], work / "evaluate.log")
    jg = json.loads(ev.read_text())["eval"]["test"]
    t0 = time.perf_counter()
    summary["numpy_filtered"] = numpy_filtered(work)
    summary["numpy_seconds"] = time.perf_counter() - t0
    summary["jgraph_filtered"] = {s: {k: jg["filtered"][s][k] for k in ("mrr", "mr", "hits@1", "hits@10")}
                                  for s in ("lhs", "rhs", "avg")}
    keys = ("mrr", "mr", "hits@1", "hits@10", "auc")
    summary["jgraph_sampled"] = {s: {k: jg["sampled"][s][k] for k in keys} for s in ("lhs", "rhs", "avg")}

    # 4. PBG's own sampled evaluation
    sh([*side, "eval", str(work), str(work / "pbg_eval.json")], work / "pbg_eval.log")
    summary["pbg_sampled"] = json.loads((work / "pbg_eval.json").read_text())
    (work / "summary.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
