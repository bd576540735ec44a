"""Finished runs on disk: find them, read them, look up a metric, and run one with provenance.

A run directory (what `python -m jgraph.train` leaves) holds `metrics.json` (final evaluation,
config, history), `metrics.jsonl` (one line per epoch), `.hydra/overrides.yaml` (the command-line
overrides) and, when the run was started by `timed_command` (the experiments' run scripts),
`run_info.json` (the exact command, its wall time, the machine). Used by `jgraph.lab.sweep_summary`,
`jgraph.lab.plot` and `experiments/*/report.py`. Imports no jax.

Metric names (`metric_value`):
  SPLIT.PROTOCOL.NAME        eval[SPLIT][PROTOCOL]["avg"][NAME], e.g. valid.filtered.mrr,
                             test.sampled.hits@10, test.raw.mr
  SPLIT.PROTOCOL.SIDE.NAME   one side: test.filtered.rhs.mrr
  last.KEY / best.KEY        the last epoch's (the best epoch's) KEY in the history: last.loss,
                             best.valid_mrr
  KEY                        a top-level number of metrics.json: train_seconds, total_seconds,
                             peak_rss_mib, chance_mrr
  auto                       the sweep objective: validation MRR, filtered, else raw, else sampled
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from jgraph.core.metrics import OBJECTIVE, is_number

LOWER_IS_BETTER = ("mr", "loss", "reg")
SKIP_DIRS = {"checkpoint", ".hydra", "snapshots", "__pycache__"}


@dataclass
class Run:
    """One run directory, read."""

    path: Path
    metrics: dict[str, Any] | None  # metrics.json; None: the run did not finish
    history: list[dict[str, Any]] = field(default_factory=list)  # per-epoch lines
    overrides: list[str] = field(default_factory=list)  # as typed: "+experiment=x", "a.b=1"
    info: dict[str, Any] = field(default_factory=dict)  # run_info.json (command, wall_seconds)

    @property
    def finished(self) -> bool:
        return self.metrics is not None

    @property
    def params(self) -> dict[str, str]:
        """Overrides as {key: value}, the `+`/`++`/`~` prefixes dropped."""
        out = {}
        for o in self.overrides:
            key, _, value = o.partition("=")
            out[key.lstrip("+~")] = value
        return out

    @property
    def wall_seconds(self) -> float | None:
        if "wall_seconds" in self.info:
            return float(self.info["wall_seconds"])
        if self.metrics and "total_seconds" in self.metrics:
            return float(self.metrics["total_seconds"])
        return None


def read_run(path: str | Path) -> Run:
    """Read a run directory (missing pieces are left empty)."""
    p = Path(path)
    metrics = _load_json(p / "metrics.json")
    # metrics.json's history has every epoch of the run (a resumed run's earlier ones too);
    # metrics.jsonl has the epochs trained into this folder, possibly over several sessions
    history: list[dict[str, Any]] = list((metrics or {}).get("history", []))
    if (p / "metrics.jsonl").is_file():
        for line in (p / "metrics.jsonl").read_text().splitlines():
            if line.strip():
                history.append(json.loads(line))
    history = _last_per_epoch(history)
    info = _load_json(p / "run_info.json") or {}
    overrides = [str(o) for o in info.get("overrides", [])]
    if (p / ".hydra" / "overrides.yaml").is_file():
        import yaml

        overrides = [str(o) for o in (yaml.safe_load((p / ".hydra" / "overrides.yaml").read_text()) or [])]
    return Run(p, metrics, history, overrides, info)


def find_runs(root: str | Path) -> list[Run]:
    """Every run under `root` (itself included): directories with metrics.json, or with
    .hydra/overrides.yaml (started, not finished), sorted by path."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in SKIP_DIRS)
        here = Path(dirpath)
        if "metrics.json" in filenames or (here / ".hydra" / "overrides.yaml").is_file():
            found.append(read_run(here))
    return sorted(found, key=lambda r: str(r.path))


def metric_value(run: Run | dict[str, Any], name: str) -> float | None:
    """The number `name` denotes (module docstring), or None when the run lacks it."""
    metrics = run.metrics if isinstance(run, Run) else run
    history = run.history if isinstance(run, Run) else (metrics or {}).get("history", [])
    if metrics is None:
        return None
    if name == "auto":
        for cand in OBJECTIVE:
            v = metric_value(run, cand)
            if v is not None:
                return v
        return None
    parts = name.split(".")
    if parts[0] in ("last", "best") and len(parts) == 2:
        values = [h[parts[1]] for h in history if is_number(h.get(parts[1]))]
        if not values:
            return None
        if parts[0] == "last":
            return float(values[-1])
        return float(min(values) if lower_is_better(name) else max(values))
    if len(parts) == 1:
        v = metrics.get(name)
        return float(v) if is_number(v) else None
    if len(parts) in (3, 4):
        split, proto, *side, key = parts
        node = metrics.get("eval", {}).get(split, {}).get(proto, {}).get(side[0] if side else "avg", {})
        v = node.get(key)
        return float(v) if is_number(v) else None
    return None


def resolve_metric(runs: list[Run], name: str = "auto") -> str:
    """`auto` made concrete: the first of OBJECTIVE (jgraph.core.metrics) that some finished run has."""
    if name != "auto":
        return name
    for cand in OBJECTIVE:
        if any(metric_value(r, cand) is not None for r in runs):
            return cand
    return "last.loss"


def lower_is_better(name: str) -> bool:
    last = name.split(".")[-1]
    return last in LOWER_IS_BETTER or last.endswith(("seconds", "rss_mib"))


def train_args(overrides: list[str], run_dir: str | Path, multirun: bool = False) -> list[str]:
    """`python -m jgraph.train [-m] OVERRIDES hydra.run.dir=RUN_DIR` (hydra.sweep.dir for -m)."""
    where = f"hydra.sweep.dir={run_dir}" if multirun else f"hydra.run.dir={run_dir}"
    return [sys.executable, "-m", "jgraph.train", *(["-m"] if multirun else []), *overrides, where]


def data_env(repo: str | Path) -> dict[str, str]:
    """JGRAPH_DATA for a run started from `repo`: as set, else ../shared/data when it exists there."""
    if os.environ.get("JGRAPH_DATA"):
        return {"JGRAPH_DATA": os.environ["JGRAPH_DATA"]}
    if (Path(repo) / ".." / "shared" / "data").is_dir():
        return {"JGRAPH_DATA": "../shared/data"}
    return {}


def timed_command(args: list[str], run_dir: str | Path, env: dict[str, str] | None = None,
           overrides: list[str] | None = None, cwd: str | Path | None = None,
           info_name: str = "run_info.json", dry_run: bool = False) -> dict[str, Any]:
    """Run `args` (a command list, usually from `train_args`) in `cwd`, timing it, and write
    `run_dir/info_name`: the command as a shell line (this interpreter shown as `python`, `env`
    shown in front), wall seconds, exit status, machine. Raises when the command fails."""
    shown = ["python" if a == sys.executable else a for a in args]
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
    command = " ".join(x for x in (prefix, " ".join(shlex.quote(a) for a in shown)) if x)
    info: dict[str, Any] = {"command": command, "overrides": overrides or [],
                            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                            "host": platform.node(), "cpus": os.cpu_count(),
                            "python": sys.version.split()[0], "git": _git_commit()}
    print(f"$ {command}", flush=True)
    if dry_run:
        return info
    t0 = time.perf_counter()
    proc = subprocess.run(args, env={**os.environ, **(env or {})}, cwd=cwd)
    info["wall_seconds"] = time.perf_counter() - t0
    info["returncode"] = proc.returncode
    out = Path(cwd or ".") / run_dir
    out.mkdir(parents=True, exist_ok=True)
    (out / info_name).write_text(json.dumps(info, indent=1) + "\n")
    if proc.returncode != 0:
        raise RuntimeError(f"command failed with exit status {proc.returncode}: {command}")
    return info


def run_plan(plan: list[tuple[str, list[str], Path]], repo: str | Path, dry_run: bool = False,
             fresh: bool = False, multirun: bool = False, done_file: str = "metrics.json"
             ) -> list[dict[str, Any]]:
    """Launch each (name, overrides, run_dir) of an experiment from `repo` (run_dir relative to it;
    a sweep's folder with `multirun`). A run whose folder already holds `done_file` is skipped
    unless `fresh` (then its folder is deleted first: a kept checkpoint would be resumed)."""
    import shutil

    env, infos = data_env(repo), []
    for name, overrides, run_dir in plan:
        full = Path(repo) / run_dir
        done = (full / done_file).is_file()
        if done and not fresh and not dry_run:
            print(f"{name}: {run_dir} is finished, skipped (--fresh to run it again)", flush=True)
            continue
        if fresh and full.exists() and not dry_run:
            shutil.rmtree(full)
        infos.append(timed_command(train_args(overrides, run_dir, multirun), run_dir, env, overrides,
                                   cwd=repo, dry_run=dry_run))
    return infos


def finished_runs(root: str | Path, names) -> dict[str, Run]:
    """{name: the run in root/name} for each of `names` whose folder holds metrics.json, in order."""
    return {n: read_run(Path(root) / n) for n in names if (Path(root) / n / "metrics.json").is_file()}


def experiment_parser(doc: str, here: Path) -> argparse.ArgumentParser:
    """The options every experiments/*/run.py takes (--results, --dry-run, --fresh, extra
    overrides); the script adds its own before parsing. `doc`: its docstring, `here`: its folder."""
    ap = argparse.ArgumentParser(description=doc.split("\n")[0])
    ap.add_argument("--results", type=Path, default=here / "results")
    ap.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    ap.add_argument("--fresh", action="store_true", help="run again what already finished")
    ap.add_argument("overrides", nargs="*", help="extra config overrides for every run")
    return ap


def run_report(here: Path, results: Path) -> int:
    """Run `here`/report.py's main on `results` (an experiment's run script ends with its report)."""
    spec = importlib.util.spec_from_file_location(f"{here.name}_report", here / "report.py")
    report = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(report)
    return report.main(["--results", str(results)])


def relative_to(path: str | Path, root: str | Path) -> Path:
    """`path` relative to `root` when it is inside it (commands recorded from the repo root)."""
    p = Path(path).resolve()
    try:
        return p.relative_to(Path(root).resolve())
    except ValueError:
        return p


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).resolve().parent, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def _load_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError:
        return None


def _last_per_epoch(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per epoch (the last one given), in epoch order."""
    by_epoch: dict[Any, dict[str, Any]] = {}
    for h in history:
        by_epoch[h.get("epoch", len(by_epoch) + 1)] = h
    return [by_epoch[k] for k in sorted(by_epoch, key=lambda e: (not is_number(e), e))]
