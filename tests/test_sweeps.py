"""Sweeps: metric look-up on stored runs, `python -m jgraph.lab.sweep_summary` on a fake sweep folder
(sorting, swept vs fixed keys, unfinished runs, Optuna's verdict, the PNG), and the sweeper presets
in conf/hydra/sweeper/ (keys exist in the schema; the Optuna preset maximizes)."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers import C0, CONF, assert_plot, color_share, compose, config_of

from jgraph.lab.runs import find_runs, lower_is_better, metric_value, read_run, resolve_metric
from jgraph.lab.sweep_summary import main as summary_main
from jgraph.lab.sweep_summary import summarize

FIXTURE = Path(__file__).parent / "fixtures" / "run"


def fake_run(path: Path, overrides: list[str], valid_mrr: float | None, test_mr: float = 50.0) -> Path:
    """A run folder as Hydra leaves it, from the stored fixture run, with chosen metrics."""
    path.mkdir(parents=True)
    (path / ".hydra").mkdir()
    (path / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
    if valid_mrr is None:  # started, never finished
        return path
    m = json.loads((FIXTURE / "metrics.json").read_text())
    m["eval"]["valid"]["filtered"]["avg"]["mrr"] = valid_mrr
    m["eval"]["test"]["filtered"]["avg"]["mr"] = test_mr
    (path / "metrics.json").write_text(json.dumps(m))
    shutil.copy(FIXTURE / "metrics.jsonl", path / "metrics.jsonl")
    return path


@pytest.fixture
def sweep(tmp_path) -> Path:
    root = tmp_path / "multirun"
    grid = {(0.05, 100): 0.20, (0.05, 200): 0.25, (0.1, 100): 0.31, (0.1, 200): 0.28}
    for (lr, dim), mrr in grid.items():
        ov = ["+experiment=fb15k237", "training.num_epochs=3", f"optimizer.lr={lr}", f"model.dimension={dim}"]
        fake_run(root / f"lr={lr},dim={dim}", ov, mrr, test_mr=100 * mrr)
    fake_run(root / "lr=0.2,dim=100", ["+experiment=fb15k237", "training.num_epochs=3", "optimizer.lr=0.2",
                                       "model.dimension=100"], None)
    (root / "multirun.yaml").write_text(yaml.safe_dump({"hydra": {"overrides": {
        "hydra": ["hydra.mode=MULTIRUN"],
        "task": ["+experiment=fb15k237", "training.num_epochs=3", "optimizer.lr=0.05,0.1,0.2",
                 "model.dimension=100,200"]}}}))
    return root


def test_metric_names_on_a_stored_run():
    run = read_run(FIXTURE)
    m = run.metrics
    assert metric_value(run, "valid.filtered.mrr") == m["eval"]["valid"]["filtered"]["avg"]["mrr"]
    assert metric_value(run, "test.sampled.hits@10") == m["eval"]["test"]["sampled"]["avg"]["hits@10"]
    assert metric_value(run, "test.raw.rhs.mr") == m["eval"]["test"]["raw"]["rhs"]["mr"]
    assert metric_value(run, "last.loss") == run.history[-1]["loss"]
    assert metric_value(run, "best.valid_mrr") == max(h["valid_mrr"] for h in run.history)
    assert metric_value(run, "train_seconds") == m["train_seconds"]
    assert metric_value(run, "valid.nothing.mrr") is None
    assert metric_value(run, "auto") == metric_value(run, "valid.filtered.mrr")
    assert run.params["debug"] == "tiny" and "+debug=tiny" in run.overrides
    assert lower_is_better("test.filtered.mr") and lower_is_better("last.loss")
    assert not lower_is_better("valid.filtered.mrr") and not lower_is_better("test.raw.hits@10")


def test_auto_metric_is_what_train_returns_to_the_sweeper():
    from jgraph.core.metrics import objective

    run = read_run(FIXTURE)
    assert metric_value(run, "auto") == pytest.approx(objective(run.metrics))
    only_sampled = copy.deepcopy(run.metrics)
    only_sampled["eval"] = {"test": {"sampled": only_sampled["eval"]["test"]["sampled"]}}
    assert metric_value(only_sampled, "auto") == pytest.approx(objective(only_sampled))
    assert resolve_metric([read_run(FIXTURE)]) == "valid.filtered.mrr"


def test_summary_of_a_fake_sweep(sweep, capsys):
    assert summary_main([str(sweep)]) == 0
    assert len(find_runs(sweep)) == 5
    md = (sweep / "summary.md").read_text()
    assert md == capsys.readouterr().out.split("\nwrote ")[0].rstrip("\n") + "\n"
    assert "sorted by **valid.filtered.mrr** (higher is better)" in md
    assert "Fixed overrides: `+experiment=fb15k237` `training.num_epochs=3`" in md
    assert "python -m jgraph.train -m +experiment=fb15k237" in md  # rebuilt from multirun.yaml
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [r["valid.filtered.mrr"] for r in rows[:4]] == ["0.31", "0.28", "0.25", "0.2"]
    assert [(r["optimizer.lr"], r["model.dimension"]) for r in rows[:2]] == [("0.1", "100"), ("0.1", "200")]
    assert rows[0]["rank"] == "1" and rows[-1]["status"] == "not finished" and rows[-1]["rank"] == "–"
    assert rows[0]["run"] == "lr=0.1,dim=100" and rows[0]["epochs"] == "3"
    assert "test.filtered.mrr" in rows[0] and "valid.filtered.hits@10" in rows[0]
    assert "| 1 | 0.1 | 100 | 0.3100 |" in md
    px = assert_plot(sweep / "summary.png")  # decodes, has a size, draws something
    assert color_share(px, C0) > 1e-3  # the runs' points / bars in the first cycle colour


def test_summary_lower_is_better_metric_and_optuna_verdict(sweep, tmp_path):
    (sweep / "optimization_results.yaml").write_text(yaml.safe_dump(
        {"name": "optuna", "best_params": {"optimizer.lr": 0.1}, "best_value": 0.31}))
    out = tmp_path / "elsewhere"
    res = summarize(sweep, "test.filtered.mr", out, plot=False)
    assert res["swept"] == ["optimizer.lr", "model.dimension"]
    assert [r[3] for r in res["rows"][:4]] == pytest.approx([20.0, 25.0, 28.0, 31.0])  # ascending
    md = (out / "summary.md").read_text()
    assert "(lower is better)" in md and "Optuna best: `optimizer.lr=0.1` → 0.3100" in md
    assert not (out / "summary.png").exists()


def test_summary_of_an_empty_folder(tmp_path, capsys):
    assert summary_main([str(tmp_path)]) == 2
    assert "no runs" in capsys.readouterr().err


def _sweeper_params(name: str) -> dict[str, str]:
    return yaml.safe_load((CONF / "hydra" / "sweeper" / f"{name}.yaml").read_text())["params"]


def test_grid_preset_composes_and_its_axes_are_config_keys():
    cfg = compose(["hydra/sweeper=grid_small"], return_hydra_config=True)
    assert "BasicSweeper" in cfg.hydra.sweeper._target_
    params = dict(cfg.hydra.sweeper.params)
    assert params == _sweeper_params("grid_small") and len(params) >= 2
    first = [f"{k}={str(v).split(',')[0]}" for k, v in params.items()]
    config_of(first)  # every axis is a schema key


def test_optuna_preset_maximizes_over_config_keys():
    preset = yaml.safe_load((CONF / "hydra" / "sweeper" / "optuna_mrr.yaml").read_text())
    assert preset["direction"] == "maximize" and preset["defaults"][0] == "optuna"
    for key in preset["params"]:
        config_of([f"{key}=0.1"])


def test_optuna_preset_with_the_plugin():
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper",
                        reason="optional extra: pip install hydra-optuna-sweeper")
    cfg = compose(["hydra/sweeper=optuna_mrr"], return_hydra_config=True)
    assert cfg.hydra.sweeper.direction == "maximize"
    assert "OptunaSweeper" in cfg.hydra.sweeper._target_


def test_history_of_a_resumed_run(tmp_path):
    """metrics.json has every epoch; metrics.jsonl only those trained into this folder (maybe twice)."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run)
    lines = (FIXTURE / "metrics.jsonl").read_text().splitlines()
    last = json.loads(lines[-1]) | {"loss": 1.5}
    (run / "metrics.jsonl").write_text(lines[-1] + "\n" + json.dumps(last) + "\n")
    h = read_run(run).history
    assert [e["epoch"] for e in h] == [1, 2, 3] and h[-1]["loss"] == 1.5
