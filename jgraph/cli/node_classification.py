"""Node classification with trained embeddings as features (the DeepWalk / PBG YouTube protocol).

    python -m jgraph.cli.node_classification RUN_DIR --labels ../shared/data/BlogCatalog/groups.tsv.gz

Protocol (Perozzi et al. 2014, as used by PBG for YouTube): the embeddings are the only features;
a one-vs-rest L2-regularized logistic regression (liblinear's objective, C=1) is trained on a random
`train_fraction` of the labelled nodes; each test node is given its k highest-scoring labels, k being
its true number of labels; micro- and macro-F1 over the test nodes (macro: unweighted mean over
all labels, 0 for a label never true nor predicted, as scikit-learn does) are averaged over
`repeats` random splits. Features are standardized on the training nodes (mean 0, variance 1)
unless `--no-standardize`. The classifier is fitted with L-BFGS in JAX (no scikit-learn needed).

Labels file: `node<TAB>label` per line (gzip or plain), one line per membership; nodes are matched
to the run's entity names.
"""

from __future__ import annotations

import gzip
import json
import sys
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jgraph.cli.main import run_command
from jgraph.core.scorer import float32_matmuls
from jgraph.errors import DataError, OptionError, command_parser

DEFAULT_FRACTIONS = (0.1, 0.5, 0.9)
_norm = getattr(optax.tree_utils, "tree_norm", None) or optax.tree_utils.tree_l2_norm


def read_labels(path: str | Path, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """(bool [N, L] membership of the N named nodes, label names). Nodes not in `names` are
    ignored; named nodes without a line have no label."""
    index = {n: i for i, n in enumerate(names)}
    opener = gzip.open if str(path).endswith(".gz") else open
    pairs, labels = [], {}
    with opener(path, "rt") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip() or line.startswith("#"):
                continue
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                raise DataError(f"{path}:{lineno}: expected node<TAB>label, got {line.strip()!r}")
            node, label = parts[0], parts[1]
            if node in index:
                pairs.append((index[node], labels.setdefault(label, len(labels))))
    y = np.zeros((len(names), len(labels)), bool)
    if pairs:
        rows, cols = np.array(pairs).T
        y[rows, cols] = True
    return y, sorted(labels, key=labels.get)


@partial(jax.jit, static_argnames=("max_steps",))
@float32_matmuls
def fit_one_vs_rest(x: jax.Array, y: jax.Array, c: float = 1.0, max_steps: int = 500, tol: float = 1e-5
                    ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """One-vs-rest logistic regression, all labels at once: minimizes, per label,
    0.5 |w|^2 + C sum_i log(1 + exp(-s_i (w.x_i + b))) (s_i = +-1; the bias unregularized),
    divided by n for conditioning, by L-BFGS until the gradient norm is below `tol`.
    x float [n, d], y bool [n, L] -> (W [d, L], b [L], iterations)."""
    n = x.shape[0]
    sign = jnp.where(y, 1.0, -1.0)

    def objective(params):
        w, b = params
        margins = sign * (x @ w + b)
        return jnp.sum(jax.nn.softplus(-margins)) / n + 0.5 * jnp.sum(w * w) / (c * n)

    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(objective)
    params = (jnp.zeros((x.shape[1], y.shape[1]), x.dtype), jnp.zeros((y.shape[1],), x.dtype))

    def step(carry):
        params, state, i, _ = carry
        value, grad = value_and_grad(params, state=state)
        updates, state = opt.update(grad, state, params, value=value, grad=grad, value_fn=objective)
        return optax.apply_updates(params, updates), state, i + 1, _norm(grad)

    def going(carry):
        _, _, i, gnorm = carry
        return (i < max_steps) & (gnorm > tol)

    init = (params, opt.init(params), jnp.int32(0), jnp.float32(jnp.inf))
    (w, b), _, steps, _ = jax.lax.while_loop(going, step, init)
    return w, b, steps


def predict_top_k(scores: np.ndarray, k: np.ndarray) -> np.ndarray:
    """bool [n, L]: each row's k[i] highest-scoring labels."""
    order = np.argsort(-scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :].repeat(len(scores), 0), axis=1)
    return ranks < np.asarray(k)[:, None]


def f1_scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Micro- and macro-F1 of multi-label indicator arrays [n, L] (ill-defined labels count 0)."""
    tp = (y_true & y_pred).sum(0).astype(np.float64)
    fp = (~y_true & y_pred).sum(0).astype(np.float64)
    fn = (y_true & ~y_pred).sum(0).astype(np.float64)
    denom = 2 * tp + fp + fn
    per_label = np.divide(2 * tp, denom, out=np.zeros_like(tp), where=denom > 0)
    micro_denom = 2 * tp.sum() + fp.sum() + fn.sum()
    return {"micro_f1": float(2 * tp.sum() / micro_denom) if micro_denom else 0.0,
            "macro_f1": float(per_label.mean()) if per_label.size else 0.0}


def evaluate(features: np.ndarray, y: np.ndarray, fractions=DEFAULT_FRACTIONS, repeats: int = 10,
             seed: int = 0, c: float = 1.0, standardize: bool = True, max_steps: int = 500
             ) -> dict[str, Any]:
    """Mean and std of micro/macro-F1 over `repeats` random splits, per training fraction.
    Only nodes with at least one label take part."""
    labelled = np.flatnonzero(y.any(1))
    x_all, y_all = np.asarray(features, np.float32)[labelled], y[labelled]
    rng = np.random.default_rng(seed)
    out: dict[str, Any] = {"nodes": int(len(labelled)), "labels": int(y.shape[1]),
                           "dimension": int(x_all.shape[1]), "repeats": repeats, "c": c,
                           "standardize": standardize, "fractions": {}}
    for frac in fractions:
        n_train = int(round(frac * len(labelled)))
        if not 0 < n_train < len(labelled):
            raise OptionError(f"train fraction {frac} leaves no training or no test node")
        runs = []
        for _ in range(repeats):
            perm = rng.permutation(len(labelled))
            tr, te = perm[:n_train], perm[n_train:]
            x_tr, x_te = x_all[tr], x_all[te]
            if standardize:
                mu, sd = x_tr.mean(0), x_tr.std(0) + 1e-8
                x_tr, x_te = (x_tr - mu) / sd, (x_te - mu) / sd
            w, b, _ = fit_one_vs_rest(jnp.asarray(x_tr), jnp.asarray(y_all[tr]), c, max_steps)
            scores = np.asarray(x_te @ np.asarray(w) + np.asarray(b))
            pred = predict_top_k(scores, y_all[te].sum(1))
            runs.append(f1_scores(y_all[te], pred))
        out["fractions"][str(frac)] = {
            k: {"mean": float(np.mean([r[k] for r in runs])), "std": float(np.std([r[k] for r in runs]))}
            for k in ("micro_f1", "macro_f1")}
    return out


def embeddings_of_run(run_dir: str | Path, overrides: list[str] | None = None
                      ) -> tuple[np.ndarray, list[str]]:
    """(float [N, D] embeddings, entity names) of a trained run's first entity type."""
    from jgraph.trained import load_run

    run = load_run(str(run_dir), overrides)
    t = run.ds.entity_types[0]
    lo, n = int(run.offsets[0]), run.ds.num_entities(t)
    names = run.ds.entity_names[t]
    if names is None:
        raise DataError(f"{run_dir}: entity names are not loaded (prepared dataset); cannot match labels")
    return np.asarray(run.emb[lo : lo + n]), [str(s) for s in names.to_pylist()]


def main(argv: list[str] | None = None) -> int:
    ap = command_parser("python -m jgraph.cli.node_classification",
                        "Micro/macro-F1 of a linear classifier on a run's embeddings.")
    ap.add_argument("run_dir")
    ap.add_argument("--labels", required=True, help="node<TAB>label file (e.g. BlogCatalog/groups.tsv.gz)")
    ap.add_argument("--fractions", type=float, nargs="+", default=list(DEFAULT_FRACTIONS),
                    help="training fractions of the labelled nodes (default 0.1 0.5 0.9)")
    ap.add_argument("--repeats", type=int, default=10, help="random splits per fraction (default 10)")
    ap.add_argument("--c", type=float, default=1.0, help="inverse L2 strength, liblinear's C")
    ap.add_argument("--no-standardize", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", help="JSON to write (default RUN_DIR/node_classification.json)")
    ap.add_argument("overrides", nargs="*", help="config changes for reopening the run (data.root=...)")
    a = ap.parse_args(argv)
    emb, names = embeddings_of_run(a.run_dir, a.overrides)
    y, label_names = read_labels(a.labels, names)
    if not y.any():
        print(f"{a.labels}: no label matches a node of the run", file=sys.stderr)
        return 1
    res = evaluate(emb, y, a.fractions, a.repeats, a.seed, a.c, not a.no_standardize)
    res["labels_file"] = str(a.labels)
    out = Path(a.out) if a.out else Path(a.run_dir) / "node_classification.json"
    out.write_text(json.dumps(res, indent=1) + "\n")
    print(f"{res['nodes']} labelled nodes, {res['labels']} labels, d={res['dimension']}, "
          f"{a.repeats} splits per fraction")
    for frac, r in res["fractions"].items():
        print(f"train {float(frac):.0%}: micro-F1 {r['micro_f1']['mean']:.4f} ± {r['micro_f1']['std']:.4f}  "
              f"macro-F1 {r['macro_f1']['mean']:.4f} ± {r['macro_f1']['std']:.4f}")
    print("wrote", out)
    return 0


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.node_classification", main))
