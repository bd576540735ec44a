"""`python -m jgraph.lab.sweep_summary SWEEP_DIR`: every run of a sweep in one table and one plot.

    python -m jgraph.train -m +experiment=fb15k237 optimizer.lr=0.05,0.1 model.dimension=100,200
    python -m jgraph.lab.sweep_summary multirun/fb15k237/<date>                 # valid filtered MRR
    python -m jgraph.lab.sweep_summary multirun/fb15k237/<date> --metric test.filtered.hits@10

Finds every run below SWEEP_DIR (a folder with metrics.json, or with .hydra/overrides.yaml for a run
that did not finish), takes the swept parameters from the runs' overrides (the keys whose values
differ), and writes into SWEEP_DIR (or --out):
  summary.csv   one row per run: swept values, the metric, validation/test MRR and Hits@10, epochs,
                training seconds, run folder
  summary.md    the same as a markdown table sorted by the metric (best first), the fixed
                overrides, and Optuna's best parameters when optimization_results.yaml is there
  summary.png   the metric against each swept value (needs matplotlib: `jgraph[plot]`)
Metric names are those of `jgraph.lab.runs` (default `auto`: validation MRR, filtered, else raw, else
sampled — what `python -m jgraph.train` returns to a sweeper).
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import Any

from jgraph.errors import command_parser
from jgraph.lab.report import fmt, fmt_seconds, markdown_table, write_csv
from jgraph.lab.runs import Run, find_runs, lower_is_better, metric_value, resolve_metric


def swept_keys(runs: list[Run]) -> tuple[list[str], list[str]]:
    """(keys whose value differs between runs, in first-seen order; the overrides every run has,
    as typed)."""
    order: list[str] = []
    for r in runs:
        for k in r.params:
            if k not in order:
                order.append(k)
    swept = [k for k in order if len({r.params.get(k) for r in runs}) > 1]
    fixed = [o for o in runs[0].overrides if all(o in r.overrides for r in runs[1:])]
    return swept, fixed


def companion_metrics(metric: str, runs: list[Run]) -> list[str]:
    """The MRR and Hits@10 of valid and test under the metric's protocol, when the runs have them."""
    parts = metric.split(".")
    proto = parts[1] if len(parts) >= 3 and parts[0] in ("valid", "test", "train") else None
    protos = [proto] if proto else ["filtered", "raw", "sampled"]
    out = []
    for p in protos:
        for s in ("valid", "test"):
            for k in ("mrr", "hits@10"):
                name = f"{s}.{p}.{k}"
                if name != metric and any(metric_value(r, name) is not None for r in runs):
                    out.append(name)
        if out:
            break
    return out


def summarize(sweep_dir: str | Path, metric: str = "auto", out_dir: str | Path | None = None,
              plot: bool = True) -> dict[str, Any]:
    """Write summary.csv / .md / .png for the sweep; returns {"rows", "header", "metric", paths}."""
    sweep_dir = Path(sweep_dir)
    runs = find_runs(sweep_dir)
    if not runs:
        raise FileNotFoundError(f"{sweep_dir}: no runs (no metrics.json or .hydra/overrides.yaml below it)")
    metric = resolve_metric(runs, metric)
    lower = lower_is_better(metric)
    swept, fixed = swept_keys(runs)
    extra = companion_metrics(metric, runs)
    header = ["rank", *swept, metric, *extra, "epochs", "train time", "status"]

    def sort_key(r: Run) -> tuple[int, float]:
        v = metric_value(r, metric)
        if v is None:
            return (1, 0.0)
        return (0, v if lower else -v)

    rows, csv_rows, records = [], [], []
    for rank, r in enumerate(sorted(runs, key=sort_key), start=1):
        v = metric_value(r, metric)
        status = "ok" if r.finished else "not finished"
        if r.finished and v is None:
            status = f"no {metric}"
        rel = _relative(r.path, sweep_dir)
        values = [metric_value(r, m) for m in extra]
        train_s = r.metrics.get("train_seconds") if r.metrics else None
        epochs = len(r.history) if r.history else None
        shown_rank = rank if v is not None else "–"
        params = [r.params.get(k, "") for k in swept]
        rows.append([shown_rank, *(_short(p) for p in params), v, *values, epochs, fmt_seconds(train_s),
                     status])
        csv_rows.append([shown_rank, *params, v, *values, epochs, train_s, status, rel])
        records.append({"run": r, "params": dict(zip(swept, params, strict=True)), "value": v})
    out_dir = Path(out_dir) if out_dir else sweep_dir
    out_dir.mkdir(parents=True, exist_ok=True)
    csv_path = write_csv(out_dir / "summary.csv", [*header[:-2], "train_seconds", "status", "run"],
                         csv_rows)
    n_ok = sum(1 for r in records if r["value"] is not None)
    lines = [f"# Sweep summary: `{sweep_dir}`", "",
             f"{len(runs)} runs ({n_ok} with {metric}), sorted by **{metric}** "
             f"({'lower' if lower else 'higher'} is better).", ""]
    command = _sweep_command(sweep_dir)
    if command:
        lines += [command, ""]
    if fixed:
        lines += ["Fixed overrides: " + " ".join(f"`{o}`" for o in fixed), ""]
    total = sum(r.metrics.get("total_seconds", 0.0) for r in runs if r.metrics)
    lines += [f"Run folders and full values: `summary.csv`. Time in the runs: {fmt_seconds(total)}.", ""]
    best = _optuna_best(sweep_dir)
    if best:
        lines += [best, ""]
    lines.append(markdown_table(header, rows, digits=4))
    png = None
    if plot and swept and n_ok:
        try:
            png = plot_sweep(records, swept, metric, out_dir / "summary.png")
            lines += ["", f"![{metric} against each swept value](summary.png)"]
        except SystemExit as e:  # matplotlib missing: the tables are still written
            print(f"summary.png skipped: {e}", file=sys.stderr)
    md = "\n".join(lines) + "\n"
    md_path = out_dir / "summary.md"
    md_path.write_text(md)
    return {"metric": metric, "header": header, "rows": csv_rows, "markdown": md, "csv": csv_path,
            "md": md_path, "png": png, "swept": swept, "fixed": fixed}


def plot_sweep(records: list[dict[str, Any]], swept: list[str], metric: str, out: Path) -> Path:
    """One panel per swept key: the metric of every run against its value of that key, and a line
    through the best run at each value (the best over the other keys)."""
    from jgraph.lab.plot import pyplot

    plt = pyplot()
    ok = [r for r in records if r["value"] is not None]
    cols = min(len(swept), 3)
    nrows = -(-len(swept) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(4.6 * cols, 3.6 * nrows), squeeze=False)
    lower = lower_is_better(metric)
    for i, key in enumerate(swept):
        ax = axes[i // cols][i % cols]
        raw = [r["params"].get(key, "") for r in ok]
        nums = [_number(v) for v in raw]
        numeric = all(n is not None for n in nums)
        if numeric:
            xs = nums
            positive = all(x > 0 for x in xs)
            if positive and max(xs) / min(xs) >= 10:
                ax.set_xscale("log")
        else:
            cats = sorted(set(raw))
            xs = [cats.index(v) for v in raw]
            ax.set_xticks(range(len(cats)), cats, rotation=30, ha="right", fontsize=8)
        ys = [r["value"] for r in ok]
        ax.scatter(xs, ys, s=22, alpha=0.7)
        best: dict[float, float] = {}
        for x, y in zip(xs, ys, strict=True):
            if x not in best or (y < best[x] if lower else y > best[x]):
                best[x] = y
        bx = sorted(best)
        ax.plot(bx, [best[x] for x in bx], "-", lw=1.2, label="best at this value")
        ax.set(xlabel=key, ylabel=metric)
        ax.grid(alpha=0.3)
        if len(bx) > 1:
            ax.legend(fontsize=7)
    for j in range(len(swept), nrows * cols):
        axes[j // cols][j % cols].axis("off")
    fig.suptitle(f"{metric} ({len(ok)} runs)")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _number(v: str) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _relative(path: Path, root: Path) -> str:
    try:
        rel = path.resolve().relative_to(root.resolve())
    except ValueError:
        return str(path)
    return str(rel) if str(rel) != "." else "."


def _short(value: str) -> str:
    """A swept value for the table: numbers to 4 significant digits (the CSV keeps them whole)."""
    x = _number(value)
    if x is None or value.lstrip("-").isdigit():
        return value
    return f"{x:.4g}"


def _sweep_command(sweep_dir: Path) -> str | None:
    """The command that made the sweep: run_info.json (jgraph.lab.runs.launch, with its wall time),
    else rebuilt from Hydra's multirun.yaml (the basic sweeper writes it)."""
    info = sweep_dir / "run_info.json"
    if info.is_file():
        import json

        d = json.loads(info.read_text())
        return f"Command: `{d.get('command')}` (wall time {fmt_seconds(d.get('wall_seconds'))})."
    mr = sweep_dir / "multirun.yaml"
    if mr.is_file():
        import yaml

        ov = (yaml.safe_load(mr.read_text()) or {}).get("hydra", {}).get("overrides", {})
        hydra_ov = [o for o in ov.get("hydra", []) if o != "hydra.mode=MULTIRUN"]
        args = " ".join(_quote(o) for o in [*hydra_ov, *ov.get("task", [])])
        return f"Command: `python -m jgraph.train -m {args}`."
    return None


def _quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


def _optuna_best(sweep_dir: Path) -> str | None:
    """Optuna's verdict (optimization_results.yaml, written by the hydra-optuna-sweeper)."""
    f = sweep_dir / "optimization_results.yaml"
    if not f.is_file():
        return None
    import yaml

    res = yaml.safe_load(f.read_text()) or {}
    params = ", ".join(f"`{k}={v}`" for k, v in (res.get("best_params") or {}).items())
    return f"Optuna best: {params} → {fmt(res.get('best_value'), 4)}"


def main(argv: list[str] | None = None) -> int:
    ap = command_parser("python -m jgraph.lab.sweep_summary",
                        "Collect a sweep's runs into summary.csv/.md/.png.")
    ap.add_argument("sweep_dir")
    ap.add_argument("--metric", default="auto",
                    help="valid.filtered.mrr, test.sampled.hits@10, last.loss, train_seconds, ... "
                         "(default auto: validation MRR)")
    ap.add_argument("--out", help="folder for the summary files (default: SWEEP_DIR)")
    ap.add_argument("--no-plot", action="store_true", help="skip summary.png")
    a = ap.parse_args(argv)
    try:
        res = summarize(a.sweep_dir, a.metric, a.out, plot=not a.no_plot)
    except FileNotFoundError as e:
        print(f"python -m jgraph.lab.sweep_summary: error: {e}", file=sys.stderr)
        return 2
    print(res["markdown"])
    print("wrote", ", ".join(str(p) for p in (res["csv"], res["md"], res["png"]) if p))
    return 0


if __name__ == "__main__":
    sys.exit(main())
