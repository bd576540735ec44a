"""The featurized and frozen settings' user errors: one line each, naming the key, file or value
(jgraph/data/features.py); one through a real `python -m jgraph.train` (exit status 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from helpers import config_of

from jgraph.errors import UserError

EDGES = "a\tr0\tb\nb\tr1\tc\nc\tr0\ta\n"
BASE = ["data.format=tsv", "data.name=g", "data.path=g", "data.train=train.tsv", "data.valid=null",
        "data.test=null", "model.dimension=4"]


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "train.tsv").write_text(EDGES)
    (tmp_path / "g" / "feats.tsv").write_text("a\tx\nb\ty\t2.5\nz\tx\n")
    return tmp_path


def load(folder: Path, *over: str):
    import models  # noqa: F401  (registers the operators)
    from jgraph.assembly import build_model
    from jgraph.data.dataset import load_dataset

    cfg = config_of([*BASE, f"data.root={folder}", *over])
    ds = load_dataset(cfg)
    return ds, build_model(cfg, ds)


def one_line_error(folder: Path, words: list[str], *over: str) -> None:
    with pytest.raises(UserError) as e:
        load(folder, *over)
    msg = str(e.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


FEAT = ["entities.entity.featurized=true", "entities.entity.features=feats.tsv"]


def test_the_features_file_is_read(folder: Path) -> None:
    ds, model = load(folder, *FEAT)
    names = ds.entity_names["entity"].to_pylist()
    assert names == ["a", "b", "c", "z"]  # z: only in the features file (cold start), added last
    assert ds.entity_names["entity__features"].to_pylist() == ["x", "y"]
    ids, w = ds.features["entity"]
    assert ids.tolist() == [[0], [1], [-1], [0]] and w.tolist() == [[1.0], [1.0], [0.0], [1.0]]
    assert model.spec.featurized == ((0, 1),) and model.spec.encoder_hidden == (0,)


@pytest.mark.parametrize("over, words", [
    (["entities.entity.featurized=true"], ["entities.entity.featurized", "entities.entity.features"]),
    ([*FEAT, "entities.entity.num_partitions=2"], ["entities.entity", "unpartitioned", "got 2"]),
    ([*FEAT[:1], "entities.entity.features=nope.tsv"], ["features file", "nope.tsv", "not found"]),
    ([*FEAT, "negatives.mode=all"], ["negatives.mode=all", "featurized"]),
    (["training.frozen_types=[user]"], ["training.frozen_types", "'user'", "entity"]),
    (["training.frozen_relations=[r9]"], ["training.frozen_relations", "'r9'", "r0, r1"]),
])
def test_settings(folder: Path, over: list[str], words: list[str]) -> None:
    one_line_error(folder, words, *over)


@pytest.mark.parametrize("text, words", [
    ("a\tx\ty\tz\n", ["feats.tsv:1", "entity<TAB>feature[<TAB>weight]", "4 columns"]),
    ("a\tx\n# c\nb\ty\theavy\n", ["feats.tsv:3", "'heavy'"]),
    ("a\tx\t-1\n", ["feats.tsv", "weights", ">= 0"]),
])
def test_bad_features_files(folder: Path, text: str, words: list[str]) -> None:
    (folder / "g" / "feats.tsv").write_text(text)
    one_line_error(folder, words, *FEAT)


def test_parquet_features_and_a_missing_column(folder: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"entity": ["a", "b", "b"], "feature": ["x", "x", "y"],
                             "weight": [1.0, 1.0, 3.0]}), folder / "g" / "f.parquet")
    ds, _ = load(folder, FEAT[0], "entities.entity.features=f.parquet")
    ids, w = ds.features["entity"]
    assert ids[1].tolist() == [0, 1] and w[1].tolist() == [0.25, 0.75]
    pq.write_table(pa.table({"entity": ["a"], "feat": ["x"]}), folder / "g" / "g.parquet")
    one_line_error(folder, ["g.parquet", "columns entity and feature", "missing feature"],
                   FEAT[0], "entities.entity.features=g.parquet")


def test_train_command_exits_2_with_one_line(folder: Path) -> None:
    res = subprocess.run([sys.executable, "-m", "jgraph.train", *BASE, f"data.root={folder}",
                          "entities.entity.featurized=true", f"hydra.run.dir={folder / 'r'}"],
                         cwd=folder, capture_output=True, text=True, timeout=300)
    assert res.returncode == 2, res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "entities.entity.features" in lines[0], res.stderr


def test_a_prepared_dataset_takes_a_features_file(folder: Path) -> None:
    """jgraph import's output: names read from the dataset, a cold-start name appended."""
    from jgraph.data.importer import ImportSpec, run_import

    run_import(ImportSpec(out=str(folder / "prep"), train=[str(folder / "g" / "train.tsv")]),
               log=lambda m: None)
    (folder / "prep" / "feats.tsv").write_text((folder / "g" / "feats.tsv").read_text())
    ds, model = load(folder, *FEAT, "data.format=prepared", "data.path=prep")
    names = ds.entity_names["entity"].to_pylist()
    assert sorted(names[:3]) == ["a", "b", "c"] and names[3] == "z" and ds.num_entities("entity") == 4
    ids, _ = ds.features["entity"]
    assert ids[names.index("b"), 0] == 1 and ids[3, 0] == 0  # b: y; z: x
