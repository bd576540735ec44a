"""Bad input data (issue 24 items 7 and 12): header lines, 2- and 3-column files mixed, evaluation
edges with entities or relations never seen in train, weights past float32, a huge bad line."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from helpers import config_of  # noqa: E402

from jgraph.data.dataset import load_dataset, unseen  # noqa: E402
from jgraph.data.reader import _weights  # noqa: E402
from jgraph.data.tsv import QUOTE_CHARS, read_edges  # noqa: E402
from jgraph.errors import DataError  # noqa: E402


def tsv_dataset(tmp_path: Path, **files: str):
    folder = tmp_path / "g"
    folder.mkdir(exist_ok=True)
    for split, text in files.items():
        (folder / f"{split}.tsv").write_text(text)
    return load_dataset(config_of(["data.format=tsv", f"data.root={tmp_path}", "data.path=g",
                                   "data.name=g", *(f"data.{s}={s}.tsv" for s in ("train", "valid", "test")
                                                    if s in files),
                                   *(f"data.{s}=null" for s in ("valid", "test") if s not in files)]))


TRIPLES = "".join(f"e{i}\tr{i % 3}\te{(i * 7 + 1) % 20}\n" for i in range(40))


@pytest.mark.parametrize("header", ["head\trelation\ttail", "Subject\tPredicate\tObject", "h\tr\tt"])
def test_a_header_line_is_skipped_with_a_warning(tmp_path, caplog, header):
    p = tmp_path / "e.tsv"
    p.write_text(f"{header}\n{TRIPLES}")
    with caplog.at_level(logging.WARNING, "jgraph"):
        e = read_edges(p)
    assert len(e) == 40 and "head" not in e.lhs.to_pylist()
    assert f"{p}:1: skipped a header line" in caplog.text
    with caplog.at_level(logging.WARNING, "jgraph"):
        ds = tsv_dataset(tmp_path, train=f"{header}\n{TRIPLES}")
    assert ds.num_entities("entity") == 40 and ds.num_relations == 3  # not 42 and 4


def test_a_weight_header_is_skipped_and_line_numbers_stay_right(tmp_path, caplog):
    p = tmp_path / "w.tsv"
    p.write_text("a\tb\tc\tstrength\nx\tr\ty\t0.5\ny\tr\tz\tbad\n")
    with pytest.raises(DataError, match=rf"{p}:3: weight 'bad'"):
        read_edges(p)
    p.write_text("a\tb\tc\tstrength\nx\tr\ty\t0.5\n")
    with caplog.at_level(logging.WARNING, "jgraph"):
        assert read_edges(p).lhs.to_pylist() == ["x"]
    assert "skipped a header line" in caplog.text


def test_an_entity_named_head_is_data(tmp_path, caplog):
    p = tmp_path / "e.tsv"
    p.write_text("head\tr1\tx\nx\tr1\ty\n")
    with caplog.at_level(logging.WARNING, "jgraph"):
        assert read_edges(p).lhs.to_pylist() == ["head", "x"]
    assert "header" not in caplog.text


@pytest.mark.parametrize("train_cols", [2, 3])
def test_mixing_2_and_3_column_files_names_both(tmp_path, train_cols):
    pairs = "a\tb\nb\tc\n"
    triples = "a\tr\tb\nb\tr\tc\n"
    train, test = (pairs, triples) if train_cols == 2 else (triples, pairs)
    with pytest.raises(DataError) as err:
        tsv_dataset(tmp_path, train=train, test=test)
    msg = str(err.value)
    assert "train.tsv" in msg and "test.tsv" in msg and "relation column" in msg
    assert "\n" not in msg


def test_unseen_evaluation_entities_and_relations_are_counted_and_kept(tmp_path, caplog):
    test = "e1\tr0\te2\nnew1\tr0\te2\ne1\tr_new\te3\nnew1\tr1\tnew2\n"
    with caplog.at_level(logging.WARNING, "jgraph"):
        ds = tsv_dataset(tmp_path, train=TRIPLES, test=test)
    assert unseen(ds) == {"test": (3, 2, 1)}
    assert "3 of 4 test edges have an entity or relation never seen in train (2 entities, " \
           "1 relations)" in caplog.text
    assert len(ds.splits["test"]) == 4  # kept: scored with untrained rows


def test_nothing_unseen_warns_nothing(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, "jgraph"):
        tsv_dataset(tmp_path, train=TRIPLES, test="e1\tr0\te2\n")
    assert "never seen" not in caplog.text


def test_a_weight_past_float32_is_an_error(tmp_path):
    p = tmp_path / "w.tsv"
    p.write_text("a\tr\tb\t1.0\nb\tr\tc\t1e300\n")
    with pytest.raises(DataError, match=rf"{p}:2: weight 1e300 overflows float32"):
        read_edges(p)
    import pyarrow as pa

    w, rows, reasons = _weights(pa.array(["1.0", "1e300", "3e38"]))  # the import path
    assert rows == [1] and reasons == ["weight is not finite in float32"]
    np.testing.assert_allclose(w, [1.0, 0.0, 3e38], rtol=1e-6)


def test_a_huge_bad_line_is_quoted_capped(tmp_path):
    p = tmp_path / "big.tsv"
    p.write_text("a\tr\tb\n" + "x" * 10_000_000 + "\n")
    with pytest.raises(DataError) as err:
        read_edges(p)
    msg = str(err.value)
    assert len(msg) < QUOTE_CHARS + 300 and "…" in msg and "10,000,000 characters" in msg
    assert f"{p}:2:" in msg


def test_archive_member_paths_never_write_outside_the_folder(tmp_path):
    import io
    import tarfile

    from jgraph.data.download import unpack

    archive = tmp_path / "evil.tar.gz"
    with tarfile.open(archive, "w:gz") as t:
        for name in ("../../escaped/train.txt", "/abs/valid.txt", "test.txt", "../../evil.sh"):
            data = b"a\tr\tb\n"
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    folder = tmp_path / "deep" / "data"
    folder.mkdir(parents=True)
    out = unpack(archive, folder)
    assert sorted(p.name for p in out) == ["test.tsv.gz", "train.tsv.gz", "valid.tsv.gz"]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == ["deep/data/test.tsv.gz", "deep/data/train.tsv.gz", "deep/data/valid.tsv.gz",
                       "evil.tar.gz"]
