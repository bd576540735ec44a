"""Edge files: formats read right, and every malformed row is an error naming file, line and text."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from jgraph.data.tsv import read_edges
from jgraph.errors import DataError


def write(tmp_path, name: str, text: str | bytes, gz: bool = False):
    path = tmp_path / (name + (".gz" if gz else ""))
    data = text.encode() if isinstance(text, str) else text
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.mark.parametrize("gz", [False, True])
def test_triples(tmp_path, gz):
    p = write(tmp_path, "e.tsv", "a\tr1\tb\nb\tr2\tc\n", gz)
    e = read_edges(p)
    assert e.lhs.to_pylist() == ["a", "b"] and e.rel.to_pylist() == ["r1", "r2"]
    assert e.rhs.to_pylist() == ["b", "c"] and e.weight is None


def test_pairs_and_weights_and_columns(tmp_path):
    e = read_edges(write(tmp_path, "p.tsv", "1\t2\n2\t3\n"))
    assert e.rel is None and e.rhs.to_pylist() == ["2", "3"]
    w = read_edges(write(tmp_path, "w.tsv", "a\tr\tb\t0.5\nb\tr\tc\t2\n"))
    np.testing.assert_allclose(w.weight, [0.5, 2.0])
    c = read_edges(write(tmp_path, "c.csv", "x,b,a,3.5\n"), ",", ["ignore", "rhs", "lhs", "weight"])
    assert c.lhs.to_pylist() == ["a"] and c.rhs.to_pylist() == ["b"] and c.rel is None
    np.testing.assert_allclose(c.weight, [3.5])


def test_names_with_quotes_and_spaces_are_kept(tmp_path):
    e = read_edges(write(tmp_path, "q.tsv", '"a b"\tr\tc"d\n'))
    assert e.lhs.to_pylist() == ['"a b"'] and e.rhs.to_pylist() == ['c"d']


@pytest.mark.parametrize(
    "text, line, fragment",
    [
        ("a\tr\tb\nc\tr\nd\tr\te\n", 2, "expected 3 columns"),  # missing column
        ("a\tr\tb\nc\tr\td\te\tf\n", 2, "expected 3 columns"),  # extra column
        ("a\tr\tb\n\nc\tr\td\n", 2, "blank line"),
        ("a\tr\tb\n\tr\tc\n", 2, "empty lhs"),  # empty head
        ("a\tr\tb\nb\t \tc\n", 2, "empty rel"),  # blank relation
        ("a\tr\tb\t1\nb\tr\tc\tx\n", 2, "weight 'x'"),  # bad weight
        ("a\tr\tb\t1\nb\tr\tc\tnan\n", 2, "weight 'nan'"),  # non-finite weight
        ("a\tr\tb\t1\nb\tr\tc\t-1\n", 2, "negative weight"),
    ],
)
def test_malformed_rows_name_file_and_line(tmp_path, text, line, fragment):
    p = write(tmp_path, "bad.tsv", text, gz=True)
    with pytest.raises(DataError) as e:
        read_edges(p)
    msg = str(e.value)
    assert f"{p}:{line}:" in msg and fragment in msg


def test_bad_utf8_names_the_line(tmp_path):
    p = write(tmp_path, "enc.tsv", b"a\tr\tb\nc\tr\t\xff\xfe\n")
    with pytest.raises(DataError, match=r"enc.tsv:2: not valid UTF-8"):
        read_edges(p)


def test_missing_file_and_bad_column_count(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_edges(tmp_path / "nope.tsv")
    with pytest.raises(DataError, match="expected 2, 3 or 4 columns"):
        read_edges(write(tmp_path, "five.tsv", "a\tb\tc\td\te\n"))
    with pytest.raises(DataError, match="unknown role"):
        read_edges(write(tmp_path, "ok.tsv", "a\tb\n"), columns=["lhs", "dst"])


def test_skip_rows_keeps_line_numbers(tmp_path):
    p = write(tmp_path, "lj.txt", "# comment\n# nodes\n1\t2\n3\n")
    with pytest.raises(DataError, match=r"lj.txt:4:"):
        read_edges(p, skip_rows=2)
