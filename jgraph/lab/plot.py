"""`python -m jgraph.lab.plot RUN_DIR [RUN_DIR ...]`: a run's curves against the epoch, as PNG.

    python -m jgraph.lab.plot outputs/fb15k237/2024-01-01_12-00-00          # -> <run>/curves.png
    python -m jgraph.lab.plot runs/complex runs/transe --out both.png --label ComplEx TransE

Panels: the training loss (the regularizer dashed, when it is not zero), every validation metric
the run logged per epoch (`eval.every_epochs`: valid_mrr, valid_hits@10, ...; the final
evaluation's filtered/raw/sampled MRR of the same split as a marker at the last epoch), and the
throughput (edges/s). Several runs are overlaid, one colour each. Reads metrics.jsonl (or the
history in metrics.json). Needs matplotlib: `pip install 'jgraph[plot]'`.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from jgraph.errors import command_parser
from jgraph.lab.runs import Run, metric_value, read_run

# per-epoch keys that are bookkeeping, not quality
BOOKKEEPING = {"epoch", "loss", "reg", "edges", "train_seconds", "wall_seconds", "edges_per_second",
               "io_wait_seconds", "io_busy_seconds", "io_bytes", "io_hidden_seconds", "partition_loads",
               "partition_inits", "partition_writes", "partition_writes_skipped", "partition_read_bytes",
               "partition_write_bytes"}  # the partition buffer's per-epoch counts: no quality


def pyplot():
    """matplotlib.pyplot on the file-only Agg backend, or a clear error naming the extra."""
    try:
        import matplotlib
    except ImportError as e:
        raise SystemExit("plots need matplotlib: pip install 'jgraph[plot]'") from e
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def quality_keys(runs: list[Run]) -> list[str]:
    """The per-epoch evaluation keys the runs logged (valid_mrr, valid_hits@10, ...), in order."""
    keys: list[str] = []
    for r in runs:
        for h in r.history:
            for k, v in h.items():
                if k not in BOOKKEEPING and k not in keys and isinstance(v, int | float) and v is not None:
                    keys.append(k)
    return keys


def plot_runs(runs: list[Run | str | Path], out: str | Path, labels: list[str] | None = None,
              title: str | None = None) -> Path:
    """Draw the runs' curves (module docstring) into the PNG `out`; returns its path."""
    plt = pyplot()
    runs = [r if isinstance(r, Run) else read_run(r) for r in runs]
    labels = labels or [r.path.name for r in runs]
    if len(labels) != len(runs):
        raise ValueError(f"{len(labels)} labels for {len(runs)} runs")
    qkeys = quality_keys(runs)
    panels = ["loss"] + (["quality"] if qkeys or any(_finals(r) for r in runs) else []) + ["speed"]
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.0), squeeze=False)
    axes = dict(zip(panels, axes[0], strict=True))
    from matplotlib.ticker import MaxNLocator

    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    single = len(runs) == 1
    styles = ["-", "--", ":", "-."]
    for i, (run, label) in enumerate(zip(runs, labels, strict=True)):
        c = colors[i % len(colors)]
        label = "" if single else f"{label} "
        ep = [h.get("epoch", j + 1) for j, h in enumerate(run.history)]
        ax = axes["loss"]
        ax.plot(ep, _values(run.history, "loss"), "-o", ms=3, color=c, label=f"{label}loss")
        regs = [h.get("reg") or 0.0 for h in run.history]
        if any(regs):
            ax.plot(ep, regs, "--", color=c, label=f"{label}reg")
        if "quality" in axes:
            ax = axes["quality"]
            for j, k in enumerate(qkeys):
                pts = [(e, h[k]) for e, h in zip(ep, run.history, strict=True) if h.get(k) is not None]
                if pts:
                    xs, ys = zip(*pts, strict=True)
                    ax.plot(xs, ys, styles[j % len(styles)], marker="o", ms=3, color=c,
                            label=f"{label}{k}")
            last = ep[-1] if ep else 0
            for j, (name, value) in enumerate(_finals(run)):
                ax.plot([last], [value], marker="*^sD"[j % 4], ms=9, color=c, linestyle="none",
                        label=f"{label}final {name}")
        axes["speed"].plot(ep, _values(run.history, "edges_per_second"), "-o", ms=3, color=c,
                           label=label.strip() or None)
    axes["loss"].set(title="training loss", xlabel="epoch", ylabel="loss per edge")
    if "quality" in axes:
        axes["quality"].set(title="evaluation", xlabel="epoch", ylabel="metric")
    axes["speed"].set(title="throughput", xlabel="epoch", ylabel="edges / s")
    for ax in axes.values():
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    if title:
        fig.suptitle(title)
    return _save(plt, fig, out)


def plot_bars(measured: dict[str, Run], published: dict[str, dict[str, Any]], metrics: list[str],
              out: str | Path, title: str | None = None) -> Path:
    """Grouped bars, one group per metric: published values (hatched; "≈0.59" counts as 0.59, text
    is skipped) beside the runs' values (`jgraph.lab.runs` metric names)."""
    plt = pyplot()
    # the i-th published series and the i-th measured one share a colour (same model, say)
    series: list[tuple[str, list[float | None], bool, int]] = []
    for i, (label, values) in enumerate(published.items()):
        series.append((label, [_as_number(values.get(m)) for m in metrics], True, i))
    for i, (label, run) in enumerate(measured.items()):
        series.append((label, [metric_value(run, m) for m in metrics], False, i))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(metrics) + 0.5 * len(series)), 4.2))
    width = 0.8 / max(len(series), 1)
    for i, (label, values, is_pub, c) in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(metrics))]
        pts = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        if not pts:
            continue
        bx, bv = zip(*pts, strict=True)
        bars = ax.bar(bx, bv, width, label=label, hatch="//" if is_pub else None,
                      color=colors[c % len(colors)], alpha=0.45 if is_pub else 0.95, edgecolor="black",
                      linewidth=0.4)
        ax.bar_label(bars, fmt="%.3f", fontsize=6, rotation=90, padding=2)
    ax.set_xticks(range(len(metrics)), metrics, fontsize=8)
    ax.set_ylabel("value")
    ax.set_ylim(0, max([v for _, vals, _, _ in series for v in vals if v is not None] + [1e-9]) * 1.25)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7)
    if title:
        ax.set_title(title)
    return _save(plt, fig, out)


def _save(plt, fig, out: str | Path) -> Path:
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def _values(history: list[dict[str, Any]], key: str) -> list[float]:
    """history[i][key] as floats, NaN where missing (matplotlib leaves a gap)."""
    return [float(h[key]) if isinstance(h.get(key), int | float) else float("nan") for h in history]


def _as_number(v: Any) -> float | None:
    if isinstance(v, int | float) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v.lstrip("≈~<> "))
        except ValueError:
            return None
    return None


def _finals(run: Run) -> list[tuple[str, float]]:
    """The final evaluation's MRR per protocol on the split evaluated per epoch (valid first)."""
    if not run.metrics:
        return []
    split = next((s for s in ("valid", "test") if s in run.metrics.get("eval", {})), None)
    out: list[tuple[str, Any]] = []
    for proto in ("filtered", "raw", "sampled"):
        v = metric_value(run, f"{split}.{proto}.mrr") if split else None
        if v is not None:
            out.append((f"{split} {proto} mrr", v))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = command_parser("python -m jgraph.lab.plot", __doc__.split("\n")[0])
    ap.add_argument("runs", nargs="+", help="run directories (holding metrics.jsonl or metrics.json)")
    ap.add_argument("--out", help="PNG to write (default: RUN_DIR/curves.png for one run, "
                                  "curves.png here for several)")
    ap.add_argument("--label", nargs="+", help="one legend label per run (default: folder names)")
    ap.add_argument("--title")
    a = ap.parse_args(argv)
    runs = []
    for p in a.runs:
        r = read_run(p)
        if not r.history:
            print(f"python -m jgraph.lab.plot: error: {p}: no metrics.jsonl or metrics.json with a history",
                  file=sys.stderr)
            return 2
        runs.append(r)
    out = a.out or (Path(a.runs[0]) / "curves.png" if len(a.runs) == 1 else Path("curves.png"))
    print(plot_runs(runs, out, a.label, a.title))
    return 0


if __name__ == "__main__":
    sys.exit(main())
