"""Benchmark results CSVs (jgraph/lab/report.py append_csv): header once, rows appended, and a header
that gains trailing columns rewrites the file with the older rows padded."""

from __future__ import annotations

import csv

import pytest

from jgraph.lab.report import append_csv


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def test_header_once_then_rows(tmp_path):
    path = tmp_path / "r" / "x.csv"
    append_csv(path, ["a", "b"], [1, 2])
    append_csv(path, ["a", "b"], [3, 4])
    assert _rows(path) == [["a", "b"], ["1", "2"], ["3", "4"]]


def test_a_new_trailing_column_pads_the_older_rows(tmp_path):
    path = tmp_path / "x.csv"
    append_csv(path, ["a", "b"], [1, 2])
    append_csv(path, ["a", "b", "dtype"], [3, 4, "bfloat16"])
    append_csv(path, ["a", "b", "dtype"], [5, 6, "float32"])
    assert _rows(path) == [["a", "b", "dtype"], ["1", "2", ""], ["3", "4", "bfloat16"],
                           ["5", "6", "float32"]]


def test_a_different_header_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    append_csv(path, ["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="not a prefix"):
        append_csv(path, ["a", "c"], [1, 2])
    assert _rows(path) == [["a", "b"], ["1", "2"]]
