"""`python -m jgraph.lab.plot RUN_DIR`: curves of a stored run (fixture metrics.jsonl / metrics.json) to PNG;
several runs overlaid; a clear error for a folder without metrics; grouped published-vs-jgraph bars."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("matplotlib", reason="plots are the optional `plot` extra")

from helpers import C0, C1, assert_plot, color_share  # noqa: E402

from jgraph.lab.plot import main, plot_bars, quality_keys  # noqa: E402
from jgraph.lab.runs import read_run  # noqa: E402

FIXTURE = Path(__file__).parent / "fixtures" / "run"
PNG = b"\x89PNG\r\n\x1a\n"


def copy_run(dst: Path, with_jsonl: bool = True) -> Path:
    shutil.copytree(FIXTURE, dst)
    if not with_jsonl:
        (dst / "metrics.jsonl").unlink()
    return dst


def test_plot_cli_writes_curves_next_to_the_run(tmp_path, capsys):
    run = copy_run(tmp_path / "run")
    assert main([str(run)]) == 0
    out = run / "curves.png"
    assert out.read_bytes()[:8] == PNG and str(out) in capsys.readouterr().out
    px = assert_plot(out)
    assert color_share(px, C0) > 1e-3  # the run's curves drawn (first cycle colour)
    assert quality_keys([read_run(run)]) == ["valid_mrr", "valid_hits@10"]


def test_plot_several_runs_and_history_from_metrics_json(tmp_path):
    a = copy_run(tmp_path / "a")
    b = copy_run(tmp_path / "b", with_jsonl=False)  # history read from metrics.json
    assert len(read_run(b).history) == len(json.loads((b / "metrics.json").read_text())["history"]) == 3
    out = tmp_path / "both.png"
    assert main([str(a), str(b), "--out", str(out), "--label", "A", "B", "--title", "two runs"]) == 0
    px = assert_plot(out)
    # both runs drawn: one colour per run (the second run's curves in the second cycle colour)
    shares = color_share(px, C0), color_share(px, C1)  # the same curves: B's drawn over most of A's
    assert shares[0] > 2e-4 and shares[1] > 1e-3, shares


def test_plot_without_metrics_is_an_error(tmp_path, capsys):
    assert main([str(tmp_path)]) == 2
    assert "no metrics.jsonl" in capsys.readouterr().err


def test_bars_published_vs_measured(tmp_path):
    run = read_run(copy_run(tmp_path / "run"))
    out = plot_bars({"jgraph": run}, {"paper": {"test.filtered.mrr": "≈0.59", "test.raw.mrr": 0.2}},
                    ["test.filtered.mrr", "test.raw.mrr", "test.filtered.hits@10"], tmp_path / "bars.png")
    px = assert_plot(out)
    # the measured bars (first colour, alpha 0.95 on white) and the published ones (the same colour
    # at alpha 0.45, hatched) each cover a visible area
    blend = lambda a: tuple(round(a * c + (1 - a) * 255) for c in C0)  # noqa: E731
    measured, published = color_share(px, blend(0.95)), color_share(px, blend(0.45))
    assert measured > 0.01 and published > 0.002, (measured, published)
