"""Export (jgraph/cli/export.py): the npy export alone, scored in plain numpy, gives the evaluator's
filtered MRR (reciprocal and standard mode, partitioned tables, max_norm and global embeddings);
TSV (PBG layout) and Parquet carry the same vectors and relation parameters. The FB15k-237 round
trip (import, train, export, numpy MRR) is the slow test at the end."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from helpers import REPO, config_of, numpy_filtered_mrr, tiny_run

from jgraph.cli.evaluate import evaluate
from jgraph.cli.export import export
from jgraph.data.prepared import train_edges
from jgraph.trained import open_run

STANDARD = ("model=transe", "model.reciprocal=false", "model.max_norm=1.0", "model.global_emb=true",
            "loss=ranking")

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration


def _edges(run_dir: Path) -> dict:
    run = open_run(str(run_dir))
    out = {"train": train_edges(run.data()), **run.data().splits}
    run.close()
    return {k: (v.lhs, v.rel, v.rhs) for k, v in out.items()}


@pytest.fixture(scope="module")
def runs(tiny_runs_root) -> dict[str, Path]:
    root = tiny_runs_root
    return {"reciprocal": tiny_run(root, parts=2), "standard": tiny_run(root, parts=1, model=STANDARD)}


@pytest.mark.parametrize("kind", ["reciprocal", "standard"])
def test_numpy_mrr_from_the_export_equals_the_evaluator(runs, tmp_path: Path, kind: str) -> None:
    run_dir = runs[kind]
    export(str(run_dir), "npy", str(tmp_path / "npy"))
    mine = numpy_filtered_mrr(tmp_path / "npy", _edges(run_dir))
    res = evaluate(str(run_dir), ["test"], ["filtered"], None, [])
    theirs = res["eval"]["test"]["filtered"]["avg"]["mrr"]
    assert mine == pytest.approx(theirs, abs=1e-4)
    chance = json.loads((run_dir / "metrics.json").read_text())["chance_mrr"]
    # the export of a model that learnt a little (2 epochs: 1.3x / 1.55x chance), not of noise
    assert mine > 1.1 * chance, (mine, chance)


def test_tsv_and_parquet_hold_the_npy_vectors_and_parameters(runs, tmp_path: Path) -> None:
    run_dir = runs["reciprocal"]
    for fmt in ("npy", "tsv", "parquet"):
        export(str(run_dir), fmt, str(tmp_path / fmt))
    names = json.loads((tmp_path / "npy" / "entity_names.json").read_text())
    emb = np.load(tmp_path / "npy" / "entity.npy")
    by_name = dict(zip(names, emb, strict=True))
    lines = (tmp_path / "tsv" / "entities.tsv").read_text().splitlines()
    assert len(lines) == len(names)
    for line in lines:
        name, *vals = line.split("\t")
        np.testing.assert_array_equal(np.array(vals, np.float32), by_name[name])  # exact round trip
    table = pq.read_table(tmp_path / "parquet" / "entity.parquet").to_pydict()
    for name, vec in zip(table["name"], table["embedding"], strict=True):
        np.testing.assert_array_equal(np.array(vec, np.float32), by_name[name])
    man = json.loads((tmp_path / "npy" / "manifest.json").read_text())
    rel_names = [r["name"] for r in man["relations"]]
    rows = [line.split("\t") for line in (tmp_path / "tsv" / "relation_types.tsv").read_text().splitlines()]
    assert {(r[1], r[2], r[3]) for r in rows} == {(s, "complex_diagonal", p) for s in ("lhs", "rhs")
                                                  for p in ("imag", "real")}
    assert len(rows) == 4 * len(rel_names)
    for name, side, op, param, shape, *vals in rows:
        ref = np.load(tmp_path / "npy" / f"{side}.{op}.{param}.npy")[rel_names.index(name)]
        assert shape == "x".join(map(str, ref.shape))
        np.testing.assert_array_equal(np.array(vals, np.float32), ref.ravel())
    rel = pq.read_table(tmp_path / "parquet" / "relations.parquet").to_pylist()
    assert len(rel) == len(rows)


def test_cli(runs, tmp_path: Path) -> None:
    p = subprocess.run([sys.executable, "-m", "jgraph.cli.export", str(runs["standard"]), "--format", "tsv",
                        "--out", str(tmp_path / "e")], cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "wrote 150 entities x 16" in p.stdout
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert man["global_embedding_added"] and man["max_norm_applied"] == 1.0
    assert man["relation_sides"] == ["rhs"]


@pytest.mark.slow
def test_fb15k237_round_trip(data_root: Path, tmp_path: Path) -> None:
    """Import FB15k-237 with the streaming importer, train 3 epochs on the prepared dataset,
    export, and recompute the evaluator's filtered test MRR in numpy from the export."""
    from jgraph.data.importer import ImportSpec, run_import
    from jgraph.train.run import run

    src = data_root / "FB15k-237"
    run_import(ImportSpec(out=str(tmp_path / "data" / "fb15k237"), train=[str(src / "train.tsv.gz")],
                          valid=[str(src / "valid.tsv.gz")], test=[str(src / "test.tsv.gz")]))
    cfg = config_of([
        "+experiment=fb15k237", "data.format=prepared", f"data.root={tmp_path / 'data'}",
        "data.path=fb15k237", "model.dimension=100", "training.num_epochs=3",
        "training.progress=false", "eval.splits=[test]", "eval.protocols=[filtered]"])
    metrics = run(cfg, str(tmp_path / "run"))
    trained = metrics["eval"]["test"]["filtered"]["avg"]["mrr"]
    export(str(tmp_path / "run"), "npy", str(tmp_path / "npy"))
    mine = numpy_filtered_mrr(tmp_path / "npy", _edges(tmp_path / "run"))
    print(f"FB15k-237 filtered test MRR: evaluator {trained:.6f}, numpy from the export {mine:.6f}")
    assert mine == pytest.approx(trained, abs=1e-4)
    # 14,541 candidates: chance is 0.00069, 3 epochs reach ~0.2-0.3 (the bar: 200x chance)
    assert trained > 200 * metrics["chance_mrr"], (trained, metrics["chance_mrr"])
