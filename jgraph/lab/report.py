"""Writing what a person reads: numbers formatted, markdown tables, CSV, a run's provenance.

Shared by `jgraph.lab.sweep_summary` and `experiments/*/report.py` (which write `results/README.md`
tables "published vs jgraph" with the command that made each number and its wall time).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from jgraph.lab.runs import Run


def fmt(v: Any, digits: int = 3) -> str:
    """A table cell: floats to `digits` decimals, None/NaN as an en dash, the rest as str."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, int):
        return f"{v:,}" if abs(v) >= 10000 else str(v)
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        if abs(v) >= 10:  # ranks, seconds: one decimal is enough
            return f"{v:.1f}"
        return f"{v:.{digits}f}"
    return str(v)


def fmt_seconds(s: float | None) -> str:
    """12 s, 4.5 min, 2.1 h."""
    if s is None:
        return "–"
    if s < 90:
        return f"{s:.0f} s"
    if s < 5400:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[Any]], digits: int = 3) -> str:
    """A GitHub markdown table; cells go through `fmt` (strings are kept as they are)."""
    def cell(v: Any) -> str:
        return (v if isinstance(v, str) else fmt(v, digits)).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(cell(h) for h in header) + " |",
             "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write_csv(path: str | Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(["" if v is None else v for v in row] for row in rows)
    return path


def append_csv(path: str | Path, header: Sequence[str], row: Sequence[Any]) -> Path:
    """Append one row to a results CSV, writing `header` first when the file is new. A header that
    adds trailing columns to the file's header replaces it (older rows get those fields empty)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    new = not path.exists()
    if not new:
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        old = rows[0] if rows else []
        if list(header) != old:
            if list(header[: len(old)]) != old:
                raise ValueError(f"{path}: header {old} is not a prefix of {list(header)}")
            with open(path, "w", newline="") as f:
                w = csv.writer(f)
                w.writerow(header)
                w.writerows(r + [""] * (len(header) - len(r)) for r in rows[1:])
    with open(path, "a", newline="") as f:
        w = csv.writer(f)
        if new:
            w.writerow(header)
        w.writerow(row)
    return path


def provenance(run: Run, root: str | Path | None = None) -> str:
    """Markdown lines: the command that made the run, its wall time, where and when."""
    info = run.info
    where = run.path if root is None else _relative(run.path, root)
    lines = [f"- run directory: `{where}`"]
    if info.get("command"):
        lines.append(f"- command: `{info['command']}`")
    elif run.overrides:
        lines.append(f"- command: `python -m jgraph.train {' '.join(run.overrides)}`")
    wall = run.wall_seconds
    m = run.metrics or {}
    parts = [f"wall time {fmt_seconds(wall)}"]
    if "train_seconds" in m:
        parts.append(f"training {fmt_seconds(m['train_seconds'])}")
    if "eval_seconds" in m:
        parts.append(f"final evaluation {fmt_seconds(m['eval_seconds'])}")
    if "peak_rss_mib" in m:
        parts.append(f"peak memory {m['peak_rss_mib']:,.0f} MiB")
    lines.append("- " + ", ".join(parts))
    machine = ", ".join(str(x) for x in (
        info.get("host"), f"{info['cpus']} CPU cores" if info.get("cpus") else None,
        f"started {info['started']}" if info.get("started") else None,
        f"git {info['git']}" if info.get("git") else None) if x)
    if machine:
        lines.append(f"- machine: {machine}")
    return "\n".join(lines) + "\n"


def _relative(path: Path, root: str | Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path(root).resolve()))
    except ValueError:
        return str(path)


def value_cells(run: Run | None, names: Sequence[str]) -> list[float | None]:
    """The run's value of each metric name (`jgraph.lab.runs.metric_value`); None where missing."""
    from jgraph.lab.runs import metric_value

    return [metric_value(run, n) if run is not None else None for n in names]


def comparison_rows(published: Sequence[dict[str, Any]], measured: Sequence[tuple[Sequence[Any], Run | None]],
                    names: Sequence[str], bold: bool = True) -> list[list[Any]]:
    """Table rows: published ones ({"cells": leading cells, "values": {name: number or text}}),
    then jgraph ones (leading cells, run) whose values are read from the run (bold)."""
    rows: list[list[Any]] = []
    for p in published:
        rows.append([*p["cells"], *(p["values"].get(n) for n in names)])
    for cells, run in measured:
        vals = value_cells(run, names)
        rows.append([*cells, *(f"**{fmt(v)}**" if bold and v is not None else v for v in vals)])
    return rows


def published_vs_jgraph(header: Sequence[str], published: Sequence[dict[str, Any]],
                        measured: Sequence[tuple[Sequence[Any], Run | None]], names: Sequence[str],
                        bold: bool = True) -> str:
    """A markdown table of `comparison_rows`."""
    return markdown_table(header, comparison_rows(published, measured, names, bold))
