"""The streaming importer (jgraph/data/importer.py, jgraph/data/reader.py): what goes in comes out
of the prepared dataset (by name, every format, any partitioning and batch size), filters, random
splits, malformed rows (stop with file:line and the text, or counted with --skip-bad), and an
interrupted import that leaves nothing a later run could take for a dataset."""

from __future__ import annotations

import collections
import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jgraph.config import DataConfig, EntityConfig, TrainConfig
from jgraph.data.importer import ImportSpec, _scatter_by_bucket, run_import
from jgraph.data.prepared import load_names, load_prepared, train_edges
from jgraph.data.reader import ordered_map, readahead
from jgraph.data.spill import ColumnSpill
from jgraph.errors import DataError

REPO = Path(__file__).resolve().parent.parent


def _graph(rng: np.random.Generator, n: int, ents: int = 60, rels: int = 5) -> list[tuple[str, str, str]]:
    return [(f"e{h}", f"r{r}", f"e{t}") for h, r, t in
            zip(rng.integers(ents, size=n), rng.integers(rels, size=n), rng.integers(ents, size=n),
                strict=True)]


def _write(path: Path, rows, sep: str = "\t") -> Path:
    text = "".join(sep.join(map(str, r)) + "\n" for r in rows)
    if path.suffix == ".gz":
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def _load(out: Path, parts: dict[str, int] | None = None):
    meta = json.loads((out / "dataset.json").read_text())
    parts = parts or meta["partitions"]
    cfg = TrainConfig(data=DataConfig(format="prepared", root=str(out.parent), path=out.name),
                      entities={t: EntityConfig(p) for t, p in parts.items()})
    ds = load_prepared(cfg)
    names = {t: np.array(load_names(str(out), t).to_pylist(), object) for t in ds.entity_types}
    rels = np.array(ds.relation_names, object)

    def triples(e):
        lt, rt = ds.relation_types[e.rel, 0], ds.relation_types[e.rel, 1]
        return collections.Counter(
            (names[ds.entity_types[a]][h], rels[r], names[ds.entity_types[b]][t])
            for h, r, t, a, b in zip(e.lhs, e.rel, e.rhs, lt, rt, strict=True))

    out_splits = {"train": triples(train_edges(ds))}
    out_splits.update({s: triples(e) for s, e in ds.splits.items()})
    return ds, meta, out_splits


@pytest.mark.parametrize("parts", [1, 3])
def test_tsv_round_trip_by_name(tmp_path: Path, parts: int) -> None:
    rng = np.random.default_rng(parts)
    train, valid, test = _graph(rng, 3000), _graph(rng, 200, ents=80), _graph(rng, 200)
    files = [_write(tmp_path / "t1.tsv.gz", train[:1000]), _write(tmp_path / "t2.tsv", train[1000:])]
    out = tmp_path / "ds"
    stats = run_import(ImportSpec(out=str(out), train=[str(f) for f in files],
                                  valid=[str(_write(tmp_path / "v.tsv", valid))],
                                  test=[str(_write(tmp_path / "x.tsv", test))],
                                  partitions={"*": parts}, block_bytes=4096, chunk_edges=500),
                       log=lambda m: None)
    ds, meta, got = _load(out)
    assert got["train"] == collections.Counter(train)
    assert got["valid"] == collections.Counter(valid) and got["test"] == collections.Counter(test)
    assert meta["partitions"] == {"entity": parts} and stats["edges"]["train"] == 3000
    # ids in order of first appearance (train, valid, test), as the in-memory TSV loader's relations
    first = list(dict.fromkeys(x for h, _, t in train + valid + test for x in (h, t)))
    assert load_names(str(out), "entity").to_pylist() == first
    assert ds.relation_names == list(dict.fromkeys(r for _, r, _ in train + valid + test))
    assert not list(tmp_path.glob(".ds.importing-*"))


def test_parquet_csv_weights_and_two_column_graphs(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    src, dst = rng.integers(50, size=500), rng.integers(50, size=500)
    w = rng.random(500).astype(np.float32)
    pq.write_table(pa.table({"w": w, "src": src, "dst": dst}), tmp_path / "g.parquet", row_group_size=100)
    out = tmp_path / "pq"
    run_import(ImportSpec(out=str(out), train=[str(tmp_path / "g.parquet")],
                          columns=["lhs=src", "rhs=dst", "weight=w"], relation_name="follow",
                          block_bytes=64 * 32), log=lambda m: None)
    ds, meta, got = _load(out)
    assert ds.relation_names == ["follow"]
    want = collections.Counter((str(a), "follow", str(b)) for a, b in zip(src, dst, strict=True))
    assert got["train"] == want
    from jgraph.storage.edges import EdgeBucketStore

    store = EdgeBucketStore(ds.train_buckets)
    np.testing.assert_allclose(np.sort(store.edges((0, 0))[3]), np.sort(w))
    store.close()
    # CSV with a header line and an ignored column
    rows = [("a", "x", "knows", "b", "1.5"), ("b", "y", "knows", "c", "2")]
    _write(tmp_path / "g.csv", [("h", "junk", "r", "t", "w"), *rows], sep=",")
    out = tmp_path / "csv"
    run_import(ImportSpec(out=str(out), train=[str(tmp_path / "g.csv")], skip_rows=1,
                          columns=["lhs", "ignore", "rel", "rhs", "weight"]), log=lambda m: None)
    assert _load(out)[2]["train"] == collections.Counter({("a", "knows", "b"): 1, ("b", "knows", "c"): 1})


def test_random_split_is_a_seeded_partition_of_the_edges(tmp_path: Path) -> None:
    rows = [(f"u{i % 97}", f"u{(i * 7) % 101}") for i in range(4000)]
    f = _write(tmp_path / "lj.tsv", rows)
    res = []
    for k, (block, chunk) in enumerate([(1 << 20, 1 << 20), (2048, 333)]):
        out = tmp_path / f"s{k}"
        run_import(ImportSpec(out=str(out), train=[str(f)], valid_fraction=0.1, test_fraction=0.25,
                              split_seed=3, block_bytes=block, chunk_edges=chunk, partitions={"*": 2}),
                   log=lambda m: None)
        res.append(_load(out)[2])
    a, b = res
    assert a == b  # the split depends on the seed and the row, not on batch sizes
    assert sum(a["train"].values()) + sum(a["valid"].values()) + sum(a["test"].values()) == 4000
    assert abs(sum(a["test"].values()) - 1000) < 120 and abs(sum(a["valid"].values()) - 400) < 80


def test_min_counts_drop_rare_relations_then_rare_entities(tmp_path: Path) -> None:
    rows = [("a", "r", "b")] * 3 + [("a", "r", "c"), ("b", "r", "a"), ("c", "rare", "d"), ("d", "rare", "a")]
    f = _write(tmp_path / "g.tsv", rows)
    out = tmp_path / "f"
    stats = run_import(ImportSpec(out=str(out), train=[str(f)], relation_min_count=3, entity_min_count=2),
                       log=lambda m: None)
    ds, meta, got = _load(out)
    # "rare" goes (2 edges); counts over the kept edges: a 5, b 4, c 1 -> c goes
    assert ds.relation_names == ["r"]
    assert load_names(str(out), "entity").to_pylist() == ["a", "b"]
    assert got["train"] == collections.Counter({("a", "r", "b"): 3, ("b", "r", "a"): 1})
    assert stats["dropped_by_min_count"] == 3


def test_min_counts_count_every_split_per_type_and_filter_given_valid_test_files(tmp_path: Path) -> None:
    """Min counts (as PBG's importer) count the edges of every given file, train, valid and test,
    each entity type on its own; valid/test edges of a dropped relation or entity go too.
    relation_min_count 2: `rare` (1 edge, in test) goes. entity_min_count 2 over bought/knows:
    user u3 has 1 train edge but 2 more in valid (kept: counting train alone would drop it), the
    item named "u1" (1 edge) goes while the user u1 (4) stays, item i2 (1 edge, valid) goes."""
    train = [("u1", "bought", "i1"), ("u1", "bought", "i1"), ("u2", "bought", "i1"), ("u1", "knows", "u2"),
             ("u3", "knows", "u1"), ("u2", "bought", "u1")]
    valid = [("u3", "bought", "i2"), ("u2", "knows", "u3")]
    test = [("u2", "bought", "i1"), ("u1", "rare", "i1")]
    files = {s: str(_write(tmp_path / f"{s}.tsv", rows)) for s, rows in
             (("train", train), ("valid", valid), ("test", test))}
    out = tmp_path / "f"
    stats = run_import(ImportSpec(out=str(out), train=[files["train"]], valid=[files["valid"]],
                                  test=[files["test"]], entity_type="user",
                                  relation_types={"bought": ["user", "item"], "rare": ["user", "item"]},
                                  relation_min_count=2, entity_min_count=2), log=lambda m: None)
    ds, meta, got = _load(out)
    assert ds.relation_names == ["bought", "knows"]
    assert load_names(str(out), "user").to_pylist() == ["u1", "u2", "u3"]
    assert load_names(str(out), "item").to_pylist() == ["i1"]
    assert got["train"] == collections.Counter(train[:5])  # u2 bought (item) u1: gone
    assert got["valid"] == collections.Counter([("u2", "knows", "u3")])
    assert got["test"] == collections.Counter([("u2", "bought", "i1")])
    assert stats["dropped_by_min_count"] == 3


def test_valid_and_test_weights(tmp_path: Path) -> None:
    """A weighted valid file keeps its weights, an unweighted test file has none (weight 1);
    valid/test edges drawn from a weighted train file keep their rows' weights."""
    cols = ["lhs", "rel", "rhs", "weight"]
    train = [(f"e{i}", "r", f"e{(i * 7 + 1) % 40}", 0.25 * (i % 9 + 1)) for i in range(200)]
    valid = [("e1", "r", "e2", 3.5), ("e2", "r", "e3", 0.5)]
    files = {"train": _write(tmp_path / "train.tsv", train), "valid": _write(tmp_path / "valid.tsv", valid),
             "test": _write(tmp_path / "test.tsv", [("e3", "r", "e1")])}
    out = tmp_path / "given"
    with pytest.raises(DataError, match="test.tsv:1: expected 4 columns"):  # one column list for all files
        run_import(ImportSpec(out=str(out), train=[str(files["train"])], valid=[str(files["valid"])],
                              test=[str(files["test"])], columns=cols), log=lambda m: None)
    files["test"] = _write(tmp_path / "test.tsv", [("e3", "r", "e1", 1.0)])
    run_import(ImportSpec(out=str(out), train=[str(files["train"])], valid=[str(files["valid"])],
                          test=[str(files["test"])], columns=cols), log=lambda m: None)
    ds = _load(out)[0]
    np.testing.assert_array_equal(ds.splits["valid"].weight, [3.5, 0.5])
    np.testing.assert_array_equal(ds.splits["test"].weight, [1.0])
    # drawn splits: each edge's weight is its train row's (every (lhs, rhs) pair is unique here)
    out = tmp_path / "drawn"
    run_import(ImportSpec(out=str(out), train=[str(files["train"])], columns=cols, valid_fraction=0.2,
                          test_fraction=0.2, split_seed=1), log=lambda m: None)
    ds = _load(out)[0]
    names = np.array(load_names(str(out), "entity").to_pylist(), object)
    weight_of = {(h, t): w for h, _, t, w in train}
    for split in ("valid", "test"):
        e = ds.splits[split]
        assert len(e) > 20 and e.weight is not None
        want = [weight_of[(names[h], names[t])] for h, t in zip(e.lhs, e.rhs, strict=True)]
        np.testing.assert_array_equal(e.weight, np.array(want, np.float32))
        assert len(set(e.weight.tolist())) > 3  # not a constant


def test_relation_types_give_typed_dictionaries(tmp_path: Path) -> None:
    rows = [("u1", "bought", "i1"), ("u2", "bought", "i1"), ("u1", "knows", "u2"), ("1", "bought", "1")]
    f = _write(tmp_path / "g.tsv", rows)
    out = tmp_path / "typed"
    run_import(ImportSpec(out=str(out), train=[str(f)], entity_type="user",
                          relation_types={"bought": ["user", "item"]}, partitions={"user": 2, "item": 1}),
               log=lambda m: None)
    ds, meta, got = _load(out)
    assert meta["entity_counts"] == {"user": 3, "item": 2}  # "1" is a user and an item
    assert got["train"] == collections.Counter(rows)


def _bad(tmp_path: Path, lines: list[bytes], name: str = "bad.tsv", **kw) -> tuple[Path, ImportSpec]:
    path = tmp_path / name
    path.write_bytes(b"".join(line + b"\n" for line in lines))
    return path, ImportSpec(out=str(tmp_path / "out"), train=[str(path)], **kw)


GOOD = [b"a\tr\tb", b"b\tr\tc"]


@pytest.mark.parametrize("line, message", [
    (b"a\tr", "expected 3 columns separated by '\\t', got 2: 'a\\tr'"),
    (b"a\tr\tb\tc\td", "expected 3 columns separated by '\\t', got 5"),
    (b"\tr\tb", "empty lhs name: '\\tr\\tb'"),
    (b"a\tr\t  ", "empty rhs name"),
    (b"", "blank line"),
    (b"caf\xe9\tr\tb", "lhs name is not valid UTF-8: 'caf\ufffd\\tr\\tb'"),
    (b"\xc2\xa0\tr\tb", "empty lhs name"),  # a no-break space: Unicode white space
    (b"a\t\tb", "empty rel name"),
    (b"a\t\xe3\x80\x80\tb", "empty rel name"),  # an ideographic space
    (b"a\tr\xff\tb", "rel name is not valid UTF-8: 'a\\tr\ufffd\\tb'"),
])
def test_malformed_rows_stop_with_file_line_and_text(tmp_path: Path, line: bytes, message: str) -> None:
    lines = GOOD * 50 + [line] + GOOD
    path, spec = _bad(tmp_path, lines, block_bytes=256)
    with pytest.raises(DataError) as e:
        run_import(spec, log=lambda m: None)
    assert f"{path}:101: " in str(e.value) and message in str(e.value)
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out.importing-*"))


def test_white_space_inside_or_around_names_is_kept(tmp_path: Path) -> None:
    path, spec = _bad(tmp_path, [b"a b\tr 1\t\xc2\xa0c", b" d\tr 1\te\xe3\x80\x80"])
    run_import(spec, log=lambda m: None)
    assert _load(tmp_path / "out")[2]["train"] == collections.Counter(
        {("a b", "r 1", "\xa0c"): 1, (" d", "r 1", "e\u3000"): 1})


def test_column_spill_gives_missing_weights_their_default(tmp_path: Path) -> None:
    spill = ColumnSpill(tmp_path, "s", (("id", np.int32), ("weight", np.float32)), {"weight": 1.0})
    spill.append(np.arange(3), None)  # unweighted rows, then weighted, then unweighted again
    spill.append(np.arange(3, 5), np.array([2.0, 3.0]))
    spill.append(np.arange(5, 6), None)
    spill.close()
    got = [cols for _, cols in spill.pieces(4)]
    np.testing.assert_array_equal(np.concatenate([c[0] for c in got]), np.arange(6))
    np.testing.assert_array_equal(np.concatenate([c[1] for c in got]), [1, 1, 1, 2, 3, 1])
    plain = ColumnSpill(tmp_path, "p", (("id", np.int32), ("weight", np.float32)), {"weight": 1.0})
    plain.append(np.arange(2), None)
    plain.close()
    assert plain.paths["weight"].stat().st_size == 0  # nothing written for a default column
    np.testing.assert_array_equal(next(plain.pieces(4))[1][1], [1, 1])


@pytest.mark.parametrize("weight, message", [
    (b"x1", "weight is not a number"), (b"inf", "weight is not finite"), (b"-2", "negative weight"),
    (b"", "weight is not a number")])
def test_bad_weights(tmp_path: Path, weight: bytes, message: str) -> None:
    path, spec = _bad(tmp_path, [b"a\tr\tb\t1", b"b\tr\tc\t" + weight],
                      columns=["lhs", "rel", "rhs", "weight"])
    with pytest.raises(DataError, match=f"{path}:2: {message}"):
        run_import(spec, log=lambda m: None)


def test_skip_bad_counts_reports_and_keeps_the_good_rows(tmp_path: Path) -> None:
    lines = [b"a\tr\tb", b"only\ttwo", b"c\tr\td", b"\tr\tx", b"e\tr\tf", b"g\xff\tr\th", b"i\tr\tj"] * 30
    path, spec = _bad(tmp_path, lines, skip_bad=True, block_bytes=128)
    logged: list[str] = []
    stats = run_import(spec, log=logged.append)
    assert stats["bad_rows"] == 90 and stats["edges"]["train"] == 120
    ds, meta, got = _load(tmp_path / "out")
    assert got["train"] == collections.Counter({(x, "r", y): 30 for x, y in ("ab", "cd", "ef", "ij")})
    ex = meta["import"]["bad_examples"]
    assert ex[:3] == [f"{path}:2: expected 3 columns, got 2: 'only\\ttwo'",
                      f"{path}:4: empty lhs name: '\\tr\\tx'",
                      f"{path}:6: lhs name is not valid UTF-8: 'g\ufffd\\tr\\th'"]
    assert ex[3:6] == [e.replace(":2:", ":9:").replace(":4:", ":11:").replace(":6:", ":13:") for e in ex[:3]]
    assert any("skipped 90 bad rows" in m for m in logged)


def test_existing_output_needs_overwrite(tmp_path: Path) -> None:
    f = _write(tmp_path / "g.tsv", [("a", "r", "b")])
    spec = ImportSpec(out=str(tmp_path / "o"), train=[str(f)])
    run_import(spec, log=lambda m: None)
    with pytest.raises(DataError, match="exists; pass --overwrite"):
        run_import(spec, log=lambda m: None)
    _write(f, [("a", "r", "b"), ("c", "r", "d")])
    spec.overwrite = True
    run_import(spec, log=lambda m: None)
    assert sum(_load(tmp_path / "o")[2]["train"].values()) == 2


def test_interrupted_import_leaves_no_dataset(tmp_path: Path, monkeypatch) -> None:
    f = _write(tmp_path / "g.tsv", _graph(np.random.default_rng(0), 2000))
    import jgraph.data.importer as importer

    def boom(*a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(importer.PreparedWriter, "write_names_batches", boom)
    with pytest.raises(KeyboardInterrupt):
        run_import(ImportSpec(out=str(tmp_path / "o"), train=[str(f)]), log=lambda m: None)
    assert not (tmp_path / "o").exists() and not list(tmp_path.glob(".o.*"))
    cfg = TrainConfig(data=DataConfig(format="prepared", root=str(tmp_path), path="o"))
    with pytest.raises(DataError, match="no dataset.json"):
        load_prepared(cfg)


@pytest.mark.integration
def test_killed_import_leaves_no_dataset_and_the_next_one_cleans_up(tmp_path: Path) -> None:
    rows = _graph(np.random.default_rng(0), 300_000, ents=50_000, rels=50)
    f = _write(tmp_path / "g.tsv", rows)
    out = tmp_path / "o"
    cmd = [sys.executable, "-m", "jgraph.cli.import_edges", str(out), "--train", str(f), "--block-mb", "1",
           "--partitions", "4"]
    proc = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not list(tmp_path.glob(".o.importing-*/_spill/train.lhs")):
        time.sleep(0.01)
    time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not out.exists()
    assert list(tmp_path.glob(".o.importing-*"))  # the staging folder is left, not at `out`
    subprocess.run(cmd, cwd=REPO, check=True, capture_output=True)
    assert not list(tmp_path.glob(".o.importing-*"))
    assert sum(_load(out)[2]["train"].values()) == 300_000


@pytest.mark.integration
def test_cli_reports_data_errors(tmp_path: Path) -> None:
    path, _ = _bad(tmp_path, [b"a\tr\tb", b"x"])
    p = subprocess.run([sys.executable, "-m", "jgraph.cli.import_edges", str(tmp_path / "o"), "--train",
                        str(path)], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 2 and f"error: {path}:2: expected 3 columns" in p.stderr


def test_scatter_by_bucket_is_a_stable_counting_sort() -> None:
    rng = np.random.default_rng(0)
    n, n_r = 1000, 3
    part = rng.integers(n_r, size=(2, n))
    row = rng.integers(1 << 20, size=(2, n))
    place = (part << 32) | row
    rel = np.arange(n, dtype=np.int32)  # the input position, to check the order within a bucket
    w = rng.random(n).astype(np.float32)
    out = np.empty((n, 4), np.int32)
    bounds = _scatter_by_bucket(place[0], place[1], rel, w.view(np.int32), n_r, n_r * n_r, out)
    bucket = part[0] * n_r + part[1]
    np.testing.assert_array_equal(np.diff(bounds), np.bincount(bucket, minlength=n_r * n_r))
    for b in range(n_r * n_r):
        got = out[bounds[b] : bounds[b + 1]]
        want = np.flatnonzero(bucket == b)  # in input order
        np.testing.assert_array_equal(got[:, 2], want)
        np.testing.assert_array_equal(got[:, 0], row[0, want])
        np.testing.assert_array_equal(got[:, 1], row[1, want])
        np.testing.assert_array_equal(got[:, 3].view(np.float32), w[want])


def test_lines_longer_than_a_block_are_read_whole(tmp_path: Path) -> None:
    rows = [("x" * 150 + str(i), "r" * 90, "y" * 120 + str(i % 7)) for i in range(40)]
    f = _write(tmp_path / "long.tsv", rows)
    run_import(ImportSpec(out=str(tmp_path / "o"), train=[str(f)], block_bytes=64), log=lambda m: None)
    assert _load(tmp_path / "o")[2]["train"] == collections.Counter(rows)


def test_ordered_map_keeps_order_and_raises_the_first_error() -> None:
    def slow_square(i: int) -> int:
        time.sleep(0.002 * (i % 3))  # later items often finish first
        if i == 7:
            raise ValueError("item 7")
        return i * i

    assert list(ordered_map(slow_square, range(7), workers=3, depth=4)) == [i * i for i in range(7)]
    got = []
    with pytest.raises(ValueError, match="item 7"):
        for x in ordered_map(slow_square, range(20), workers=3, depth=4):
            got.append(x)
    assert got == [i * i for i in range(7)]
    it = ordered_map(slow_square, range(1000), workers=2, depth=3)
    assert next(it) == 0
    it.close()  # stops early: pending work is cancelled, the pool shut down


def test_readahead_yields_in_order_and_hands_errors_over() -> None:
    def items():
        yield from range(5)
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in readahead(items(), depth=2):
            got.append(x)
    assert got == list(range(5))


@pytest.mark.parametrize("kw, message", [
    ({"train": []}, "--train: at least one file"),
    ({"valid": ["V"], "valid_fraction": 0.1}, "not both"),
    ({"test": ["V"], "test_fraction": 0.1}, "not both"),
    ({"valid_fraction": 0.5, "test_fraction": 0.5}, "must be < 1"),
    ({"valid": ["missing.tsv"]}, "missing.tsv: no such file"),
])
def test_argument_errors_stop_before_anything_is_written(tmp_path: Path, kw: dict, message: str) -> None:
    """Each bad combination of arguments is a DataError naming it, raised before the output
    folder (or its staging folder) exists."""
    train = _write(tmp_path / "train.tsv", _graph(np.random.default_rng(0), 50))
    kw = {k: [str(train) if f == "V" else str(tmp_path / f) for f in v] if k in ("valid", "test") else v
          for k, v in kw.items()}
    spec = ImportSpec(out=str(tmp_path / "out"), **{"train": [str(train)], **kw})
    with pytest.raises(DataError, match=message):
        run_import(spec, log=lambda m: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv"]


@pytest.mark.parametrize("args, message", [
    (["--train", "T", "--valid", "T", "--valid-fraction", "0.1"], "not both"),
    (["--train", "T", "--valid-fraction", "0.6", "--test-fraction", "0.5"], "must be < 1"),
    (["--train", "T", "--valid-fraction", "-0.1"], "--valid-fraction must be >= 0, got -0.1"),
    (["--train", "T", "--entity-min-count", "0"], "--entity-min-count must be >= 1, got 0"),
    (["--train", "T", "--partitions", "0"], "--partitions P must be >= 1, got 0"),
    (["--train", "T", "--partitions", "user=x"], "--partitions 'user=x'"),
    (["--train", "T", "--relation-types", "J"], "types.json: not JSON"),
    (["--train", "missing.tsv"], "missing.tsv: no such file"),
    (["--train", "T", "--block-mb", "x"], "--block-mb"),
])
def test_cli_argument_errors_are_one_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    """`jgraph import` with a bad argument: exit status 2, one line on stderr naming it, nothing
    written."""
    from jgraph.cli.main import main

    train = _write(tmp_path / "train.tsv", [("a", "r", "b")])
    (tmp_path / "types.json").write_text("{bad")
    sub = {"T": str(train), "J": str(tmp_path / "types.json"), "missing.tsv": str(tmp_path / "missing.tsv")}
    code = main(["import", str(tmp_path / "out"), *(sub.get(a, a) for a in args)])
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.strip()]
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["train.tsv", "types.json"]
