"""The Python API (jgraph.fit / jgraph.load, jgraph/api.py) and self-contained runs (jgraph/mapping.py):
issue 25's snippet on +debug=tiny; a TSV run that still loads, scores, predicts and exports after its
data is deleted; a reordered train.tsv refused instead of silently reassigning embeddings; a
checkpoint's plugin list never chooses what gets imported (issue 24 items 3 and 8)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import write_toy_tsv

import jgraph
from jgraph.cli.main import main
from jgraph.errors import DataError, UserError

TSV_TINY = ["+debug=tiny", "data.format=tsv", "data.train=train.tsv", "data.valid=valid.tsv",
            "data.test=test.tsv", "eval.max_edges=100"]


def test_importing_jgraph_imports_no_jax() -> None:
    code = "import sys, jgraph; assert 'jax' not in sys.modules, 'jax'; print(jgraph.__version__)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == jgraph.__version__ != ""


def test_the_issue_snippet_on_the_tiny_default(tmp_path: Path) -> None:
    run = jgraph.fit(["+debug=tiny"], run_dir=tmp_path / "RUN")
    assert run.run_dir == tmp_path / "RUN" and (run.run_dir / "metrics.json").is_file()
    assert run.metrics["data"]["entities"] == {"entity": 300}  # +debug=tiny's toy graph
    model = jgraph.load(tmp_path / "RUN")
    names = model.entity_names("entity")
    assert len(names) == 300 and names[:3] == ["e0", "e1", "e2"]
    emb = model.embeddings("entity")
    assert emb.shape == (300, 16) and emb.dtype == np.float32 and np.isfinite(emb).all()
    top = model.predict(head="e1", relation="r1", k=10)
    assert len(top) == 10 and [s for _, s in top] == sorted((s for _, s in top), reverse=True)
    # score() is the scorer predict() ranks by: the same numbers for the same triples
    got = model.score(["e1"] * 3, ["r1"] * 3, [n for n, _ in top[:3]])
    assert got.shape == (3,)
    np.testing.assert_allclose(got, [s for _, s in top[:3]], rtol=1e-4, atol=1e-5)
    near = model.neighbors("e1", k=5)
    assert len(near) == 5 and "e1" not in [n for n, _ in near]
    # the dot product of the read-out rows is the neighbour score (comparator dot, no max_norm)
    i = names.index(near[0][0])
    assert near[0][1] == pytest.approx(float(emb[1] @ emb[i]), rel=1e-4)
    metrics = model.evaluate(split="test")
    # evaluating the reopened run reproduces the training job's own evaluation
    want = run.metrics["eval"]["test"]["filtered"]["avg"]["mrr"]
    assert metrics["filtered"]["avg"]["mrr"] == pytest.approx(want, rel=1e-5)
    model.close()


def test_overrides_name_a_folder_run_and_mistakes_are_user_errors() -> None:
    # a recipe pointed at a folder is named after it unless data.name says otherwise
    assert jgraph.compose(["+experiment=fb15k237", "data.path=/somewhere/mygraph"]).data.name == "mygraph"
    assert jgraph.compose(["data.path=/x/mygraph", "data.name=other"]).data.name == "other"
    with pytest.raises(UserError, match="did you mean data.format"):
        jgraph.compose(["+data.folder=x"])
    with pytest.raises(UserError, match="fit: give a list of overrides"):
        jgraph.fit("+debug=tiny")


@pytest.fixture(scope="module")
def tsv_run(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("api")
    write_toy_tsv(root / "data" / "graph")
    over = [*TSV_TINY, f"data.root={root / 'data'}", "data.path=graph"]
    # a TrainConfig built in Python (its distributed defaults are ${oc.env:...} strings until resolved)
    cfg = jgraph.TrainConfig()
    cfg.training.num_epochs, cfg.training.progress, cfg.model.dimension = 1, False, 16
    cfg.training.batch_size, cfg.eval.max_edges = 100, 100
    cfg.negatives.num_batch_negs = cfg.negatives.num_uniform_negs = 10
    cfg.data.format, cfg.data.root, cfg.data.path, cfg.data.name = "tsv", str(root / "data"), "graph", "graph"
    cfg.data.train, cfg.data.valid, cfg.data.test = "train.tsv", "valid.tsv", "test.tsv"
    run = jgraph.fit(cfg, run_dir=root / "run", log=False)
    assert run.metrics["config"]["distributed"]["num_processes"] == 1
    return {"root": root, "data": root / "data" / "graph", "run": root / "run", "fit": run, "over": over}


def test_a_run_loads_predicts_and_exports_without_its_data(tsv_run, tmp_path: Path, capsys) -> None:
    assert tsv_run["fit"].metrics["data"]["name"] == "graph"  # named after the folder
    with jgraph.load(tsv_run["run"]) as m:
        before = (m.entity_names(), m.embeddings(), m.predict(head="ent3", relation="rel1", k=5),
                  m.neighbors("ent3", k=3), m.score(["ent3"], ["rel1"], ["ent7"]))
    saved = tmp_path / "saved"
    shutil.move(tsv_run["data"], saved)
    try:
        with jgraph.load(tsv_run["run"]) as m:
            after = (m.entity_names(), m.embeddings(), m.predict(head="ent3", relation="rel1", k=5),
                     m.neighbors("ent3", k=3), m.score(["ent3"], ["rel1"], ["ent7"]))
            man = m.export(tmp_path / "npy", "npy")
            with pytest.raises(DataError, match="needs the run's data files"):
                m.evaluate(split="test")
        assert after[0] == before[0] and after[2] == before[2] and after[3] == before[3]
        np.testing.assert_array_equal(after[1], before[1])
        np.testing.assert_array_equal(after[4], before[4])
        assert man["entity_types"]["entity"]["count"] == len(before[0])
        np.testing.assert_array_equal(np.load(tmp_path / "npy" / "entity.npy"), before[1])
        assert json.loads((tmp_path / "npy" / "entity_names.json").read_text()) == before[0]
        # the command line says the same in one line, exit status 2
        code = main(["evaluate", str(tsv_run["run"])])
        err = capsys.readouterr().err
        assert code == 2 and "Traceback" not in err
        assert "needs the run's data files" in err and len(err.strip().splitlines()) == 1
    finally:
        shutil.move(saved, tsv_run["data"])


def test_a_reordered_train_tsv_is_refused(tsv_run, tmp_path: Path) -> None:
    with jgraph.load(tsv_run["run"]) as m:
        want = m.evaluate(split="test")["filtered"]["avg"]
    train = tsv_run["data"] / "train.tsv"
    original = train.read_text()
    lines = original.splitlines(keepends=True)
    shuffled = [lines[i] for i in np.random.default_rng(1).permutation(len(lines))]
    train.write_text("".join(shuffled))
    try:
        with jgraph.load(tsv_run["run"]) as m:  # the names kept with the run: opening still works
            assert m.entity_names() == jgraph.load(tsv_run["run"]).entity_names()
            with pytest.raises(UserError, match="assigns other ids"):
                m.evaluate(split="test")
        with pytest.raises(UserError, match="assigns other ids"):  # resuming on it
            jgraph.fit([*tsv_run["over"], "training.num_epochs=2"], run_dir=tsv_run["run"], log=False)
    finally:
        train.write_text(original)
    with jgraph.load(tsv_run["run"]) as m:  # the original order evaluates again, to the same figures
        assert m.evaluate(split="test")["filtered"]["avg"] == want


def test_a_checkpoint_cannot_choose_the_modules_imported(tsv_run, tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    shutil.copytree(tsv_run["run"], run)
    manifest = run / "checkpoint" / "checkpoint.json"
    m = json.loads(manifest.read_text())
    m["config"]["plugins"] = ["models", "evil"]
    manifest.write_text(json.dumps(m))
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    marker = tmp_path / "pwned"
    (plugins / "evil.py").write_text(f"open({str(marker)!r}, 'w').write('ran')\n")
    monkeypatch.syspath_prepend(str(plugins))
    with jgraph.load(run) as model:
        model.predict(head="ent3", relation="rel1", k=3)
    assert not marker.exists()
    res = subprocess.run([sys.executable, "-m", "jgraph", "predict", str(run), "--head", "ent3",
                          "--relation", "rel1", "--k", "3"], cwd=plugins, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    assert not marker.exists() and "--allow-plugin" in res.stderr  # warned, not imported
    with jgraph.load(run, allow_plugins=["evil"]):
        pass
    assert marker.read_text() == "ran"  # imported only when the user allowed it


def test_the_names_hash_ignores_batching_but_not_order_or_boundaries() -> None:
    import pyarrow as pa

    from jgraph.mapping import NamesHash

    def digest(*batches) -> str:
        h = NamesHash()
        for b in batches:
            h.update(b if isinstance(b, pa.Array) else pa.array(b, pa.string()))
        return h.hexdigest()

    whole = digest(["a", "bc", "", "déf"])
    assert digest(["a"], ["bc", ""], [], ["déf"]) == whole
    assert digest(pa.array(["x", "a", "bc", "", "déf"]).slice(1)) == whole  # a slice: offsets not at 0
    assert digest(["bc", "a", "", "déf"]) != whole  # another order: other ids
    assert digest(["ab", "c", "", "déf"]) != whole  # the same bytes cut elsewhere
    assert digest(["a", "bc", "déf"]) != whole
