"""The speed suite runs end to end (tiny graph) and records what it measured."""

import csv
import subprocess
import sys
from pathlib import Path

import pytest

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]


def _suite():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import suite
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    return suite


def test_suite_rows_reach_the_csv(tmp_path):
    out = tmp_path / "suite.csv"
    cmd = [sys.executable, str(ROOT / "benchmarks" / "suite.py"), "--nodes", "3000", "--edges", "20000",
           "--rows", "d100-dot-softmax", "d100-dot-softmax-p4", "--out", str(out)]
    printed = subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert "row traffic at d=100" in printed
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [r["row"] for r in rows] == ["d100-dot-softmax", "d100-dot-softmax-p4"]
    suite = _suite()
    for r in rows:
        assert r["edges"] == "20000" and float(r["edges_per_s"]) > 0
        assert float(r["row_ns"]) > 0 and float(r["roofline_share"]) > 0
        # the row's PBG figure from the suite's table, written to this row (not another row's)
        assert r["pbg_edges_per_s"] == str(suite.ROWS[r["row"]][5])
        # the row-bound share: edges/s x ns per row x rows touched per edge (50 uniform negatives)
        want = float(r["edges_per_s"]) * float(r["row_ns"]) * suite.rows_per_edge(50) / 1e9
        assert float(r["row_bound_share"]) == pytest.approx(want, rel=0.02, abs=6e-4), (r, want)


def test_rows_per_edge():
    rows_per_edge = _suite().rows_per_edge
    assert rows_per_edge(50) == 4  # two entities + one uniform negative per side
    assert rows_per_edge(1000) == 42
