"""Experiments: every conf/experiment/*.yaml composes and runs a few steps on tiny data laid out as its
real dataset (FB15k/, FB15k-237/, freebase/, LiveJournal/, BlogCatalog/ built in a temporary
folder); every experiments/*/run.py plans commands whose overrides are valid and prints them with
--dry-run; every experiments/*/report.py writes its results/README.md and PNGs from stored metrics
(the fixture run)."""

from __future__ import annotations

import gzip
import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from helpers import CONF, REPO, config_of

from jgraph.train.run import run

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration

EXPERIMENT_CONFIGS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))
EXPERIMENT_DIRS = sorted(p.parent.name for p in (REPO / "experiments").glob("*/run.py"))
FIXTURE = Path(__file__).parent / "fixtures" / "run"
# a few seconds a run: tiny shapes, one epoch, small evaluation, nothing written to disk
TINY = ["+debug=tiny", "training.num_epochs=1", "model.dimension=8", "training.batch_size=100",
        "training.batches_per_dispatch=1", "training.compute_groups=1", "eval.max_edges=20",
        "eval.every_max_edges=20", "eval.batch_size=32", "storage.save=false"]


@pytest.fixture(scope="module", autouse=True)
def xla_cache(request):
    """Compiled XLA programs kept in pytest's cache folder (.pytest_cache/d/xla) between sessions:
    the tiny runs are mostly compile time, so a second session runs them in a fraction of it.
    Only for this module; `pytest --cache-clear` (or -p no:cacheprovider) starts cold."""
    import jax
    from jax.experimental.compilation_cache import compilation_cache as cc

    cache = getattr(request.config, "cache", None)
    if cache is None:
        yield
        return
    keys = ("jax_compilation_cache_dir", "jax_persistent_cache_min_compile_time_secs")
    old = {k: getattr(jax.config, k) for k in keys}
    jax.config.update("jax_compilation_cache_dir", str(cache.mkdir("xla")))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.2)
    cc.reset_cache()
    yield
    for k, v in old.items():
        jax.config.update(k, v)
    cc.reset_cache()


def _write(path: Path, rows, header: tuple[str, ...] = ()) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt") as f:
        f.writelines(h + "\n" for h in header)
        f.writelines("\t".join(map(str, r)) + "\n" for r in rows)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    """Tiny stand-ins for every dataset the experiments name, in their real folder layout."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for folder in ("FB15k", "FB15k-237", "freebase"):  # head<TAB>relation<TAB>tail
        for split, n in (("train", 600), ("valid", 40), ("test", 40)):
            _write(root / folder / f"{split}.tsv.gz",
                   [(f"/m/{rng.integers(50)}", f"/r/{rng.integers(4)}", f"/m/{rng.integers(50)}")
                    for _ in range(n)])
    pairs = sorted({tuple(sorted(rng.choice(60, 2, replace=False))) for _ in range(700)})[:500]
    _write(root / "LiveJournal" / "soc-LiveJournal1.txt.gz", pairs, header=("# comment",) * 4)
    _write(root / "BlogCatalog" / "edges.tsv.gz", pairs)
    for split, sl in (("train", slice(0, 400)), ("valid", slice(400, 450)), ("test", slice(450, 500))):
        _write(root / "BlogCatalog" / f"{split}.tsv.gz", pairs[sl])
    groups = [(n, n % 3) for n in range(60)] + [(n, 3) for n in range(0, 60, 4)]  # some users in 2 groups
    _write(root / "BlogCatalog" / "groups.tsv.gz", groups)
    # Freebase is trained from a prepared dataset (conf/data/freebase.yaml): import the tiny triples
    from jgraph.data.importer import ImportSpec, run_import

    fb = root / "freebase"
    run_import(ImportSpec(out=str(root / "freebase-p16"), train=[str(fb / "train.tsv.gz")],
                          valid=[str(fb / "valid.tsv.gz")], test=[str(fb / "test.tsv.gz")],
                          partitions={"*": 2}, sync=False))
    return root


def given_keys(overrides: list[str]) -> frozenset[str]:
    from jgraph.train.recipe import given_keys as keys

    return keys(overrides)


def tiny_config(overrides: list[str], data_root: Path):
    cfg = config_of([*overrides, *TINY, f"data.root={data_root}"])
    n = cfg.negatives
    if not n.all_negs:
        n.num_batch_negs, n.num_uniform_negs = 10, 10
    cfg.eval.num_batch_negs = cfg.eval.num_uniform_negs = 10
    if cfg.eval.every_epochs:
        cfg.eval.every_epochs = 1  # the per-epoch evaluation runs too
    cfg.eval.splits = cfg.eval.splits[-1:]  # one split is enough to exercise every protocol
    for ent in cfg.entities.values():  # 2 partitions take the same code path as 16, in 4 buckets
        ent.num_partitions = min(ent.num_partitions, 2)
    return cfg


def assert_untrained_ranking(res: dict, n: int, where) -> None:
    """The metrics of one protocol after one epoch on the random tiny graph (little to learn: the
    social stand-ins' edges all point from the lower id, FB-like triples are uniform) among about
    n candidates: MR within 0.4x-1.4x of a random ranking's (n + 1) / 2 (the mean of 40 uniform
    ranks is within 15% of it; BlogCatalog's filtered MR is 0.56x), MRR from a third of chance
    H_n / n to 4x (0.9x-2.1x seen); a rank stuck at 1 or at n, or off by a factor, leaves these;
    hits@k rising with k and below MRR at k=1, and 1/MR <= MRR (Jensen: mean of 1/rank >= 1/mean
    rank)."""
    from jgraph.core.metrics import chance_mrr

    mrr, mr, chance = res["mrr"], res["mr"], chance_mrr(n)
    assert 0.4 * (n + 1) / 2 < mr < 1.4 * (n + 1) / 2, (where, mr, n)
    assert chance / 3 < mrr < 4 * chance, (where, mrr, chance)
    assert 1 / mr <= mrr + 1e-9, (where, mr, mrr)
    hits = [res[k] for k in sorted((k for k in res if k.startswith("hits@")), key=lambda k: int(k[5:]))]
    assert hits == sorted(hits) and hits[0] <= mrr + 1e-9 and hits[-1] <= 1, (where, hits)
    assert res["count"] == 40  # eval.max_edges=20, both sides


def load_script(experiment: str, name: str):
    path = REPO / "experiments" / experiment / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"exp_{experiment}_{name}", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("name", EXPERIMENT_CONFIGS)
def test_every_experiment_config_runs_on_tiny_data(name, tiny_data, tmp_path):
    cfg = tiny_config([f"+experiment={name}"], tiny_data)
    if name == "blogcatalog":  # kept: the node-classification step below reads the checkpoint
        cfg.storage.save = True
    # a recipe (+experiment=kg) keeps what the tiny run sets
    m = run(cfg, str(tmp_path), given_keys(TINY) | {"eval.every_epochs"})
    assert m["experiment"] == name
    assert len(m["history"]) == 1 and np.isfinite(m["history"][0]["loss"])
    for split in cfg.eval.splits:
        for proto in cfg.eval.protocols:
            n = (1 + cfg.eval.num_batch_negs + cfg.eval.num_uniform_negs if proto == "sampled"
                 else max(m["data"]["entities"].values()))
            assert_untrained_ranking(m["eval"][split][proto]["avg"], n, (split, proto))
    if cfg.eval.every_epochs:
        assert f"{cfg.eval.every_split}_mrr" in m["history"][0]
    if name == "blogcatalog":  # experiments/pbg_youtube: embeddings of this recipe -> classifier
        from jgraph.cli.node_classification import main as classify

        out = tmp_path / "nc.json"
        assert classify([str(tmp_path), "--labels", str(tiny_data / "BlogCatalog" / "groups.tsv.gz"),
                         "--fractions", "0.5", "--repeats", "1", "--out", str(out)]) == 0
        res = json.loads(out.read_text())
        assert res["nodes"] == 60 and res["labels"] == 4 and res["dimension"] == 8
        assert 0.0 <= res["fractions"]["0.5"]["micro_f1"]["mean"] <= 1.0


PLANS = {
    "pbg_fb15k": lambda mod, res: [*mod.plan("fb15k237", list(mod.EXPERIMENTS), res, []),
                                   *mod.plan("fb15k", list(mod.EXPERIMENTS), res, [])],
    "kbc_complex_n3": lambda mod, res: mod.plan("fb15k237", res, []),
    "kg_recipe": lambda mod, res: mod.plan(list(mod.DATASETS), res, []),
    "pbg_livejournal": lambda mod, res: [*mod.plan("blogcatalog", res, 1000, []),
                                         *mod.plan("livejournal", res, 1000, [])],
    "pbg_youtube": lambda mod, res: mod.plan(res, []),
    "featurized": lambda mod, res: mod.plan(res, []),
    "deepwalk_blogcatalog": lambda mod, res: mod.plan(res, []),
    "sweeps_fb15k237": lambda mod, res: mod.plan(list(mod.SWEEPS), res, []),
    "social_blogcatalog": lambda mod, res: mod.plan(list(mod.GRAPHS), list(mod.VARIANTS), res,
                                                    res / "graphs", []),
}


def test_every_experiment_folder_is_complete():
    assert set(EXPERIMENT_DIRS) == set(PLANS), "add the new experiment to PLANS in this test"
    for e in EXPERIMENT_DIRS:
        for f in ("README.md", "run.py", "report.py"):
            assert (REPO / "experiments" / e / f).is_file(), (e, f)


@pytest.mark.parametrize("experiment", sorted(PLANS))
def test_run_script_plans_valid_commands(experiment, tiny_data, tmp_path, capsys):
    mod = load_script(experiment, "run")
    steps = PLANS[experiment](mod, tmp_path / "results")
    assert steps
    for _, overrides, run_dir in steps:
        task = [o for o in overrides if not o.startswith(("hydra/", "hydra."))]  # sweeper choices
        tiny_config(task, tiny_data)  # every override is a schema key with a valid value
        assert not Path(run_dir).is_absolute() or tmp_path in Path(run_dir).parents
    assert mod.main(["--dry-run", "--results", str(tmp_path / "results")]) == 0
    printed = [line for line in capsys.readouterr().out.splitlines() if line.startswith("$ ")]
    assert printed and all("python -m jgraph." in line for line in printed)
    assert not (tmp_path / "results").exists()  # a dry run writes nothing


def stored_run(dst: Path, command: str = "python -m jgraph.train ...", wall: float = 123.0) -> Path:
    shutil.copytree(FIXTURE, dst)
    (dst / "run_info.json").write_text(json.dumps({"command": command, "wall_seconds": wall, "cpus": 2,
                                                   "host": "test", "started": "2024-01-01T00:00:00+00:00"}))
    return dst


def _fixture_value(path: str) -> float:
    node = json.loads((FIXTURE / "metrics.json").read_text())["eval"]
    for k in path.split("."):
        node = node[k]
    return node


def test_pbg_fb15k_report(tmp_path):
    res = tmp_path / "results"
    for m in ("complex", "transe"):
        stored_run(res / "runs" / "fb15k237" / m, command=f"python -m jgraph.train +experiment={m}")
    assert load_script("pbg_fb15k", "report").main(["--results", str(res)]) == 0
    md = (res / "README.md").read_text()
    assert "## FB15k-237" in md and "0.790" in md and "0.313" in md  # PBG FB15k; LibKGE TransE
    assert f"**{_fixture_value('test.filtered.avg.mrr'):.3f}**" in md
    assert "python -m jgraph.train +experiment=transe" in md and "wall time 2.0 min" in md
    for png in ("fb15k237_curves.png", "fb15k237_bars.png"):
        assert (res / png).stat().st_size > 1000 and f"]({png})" in md


def test_kbc_report(tmp_path):
    res = tmp_path / "results"
    stored_run(res / "runs" / "fb15k237")
    assert load_script("kbc_complex_n3", "report").main(["--results", str(res)]) == 0
    md = (res / "README.md").read_text()
    assert "0.37" in md and f"**{_fixture_value('test.filtered.avg.hits@10'):.3f}**" in md
    assert "model.dimension = 16" in md  # this run's setting beside the published one
    assert (res / "fb15k237_curves.png").is_file() and (res / "fb15k237_bars.png").is_file()


def test_livejournal_report(tmp_path):
    res = tmp_path / "results"
    stored_run(res / "runs" / "blogcatalog")
    assert load_script("pbg_livejournal", "report").main(["--results", str(res)]) == 0
    md = (res / "README.md").read_text()
    assert "0.749" in md and "245.9" in md and "0.691" in md
    assert f"**{_fixture_value('test.sampled.avg.mrr'):.3f}**" in md and "50 batch + 50 uniform" in md
    assert (res / "blogcatalog_curves.png").is_file()


def test_youtube_report(tmp_path):
    res = tmp_path / "results"
    run_dir = stored_run(res / "runs" / "blogcatalog")
    fr = {f: {"micro_f1": {"mean": 0.30 + float(f) / 10, "std": 0.01},
              "macro_f1": {"mean": 0.2, "std": 0.02}} for f in ("0.1", "0.5", "0.9")}
    (run_dir / "node_classification.json").write_text(json.dumps(
        {"nodes": 10312, "labels": 39, "dimension": 128, "repeats": 10, "c": 1.0, "standardize": True,
         "fractions": fr}))
    info = {"command": "python -m jgraph.cli.node_classification x", "wall_seconds": 61.0}
    (run_dir / "classify_info.json").write_text(json.dumps(info))
    assert load_script("pbg_youtube", "report").main(["--results", str(res)]) == 0
    md = (res / "README.md").read_text()
    assert "| 90% | **39.00** ± 1.00 | 42.00 |" in md and "48.0" in md
    assert "python -m jgraph.cli.node_classification x" in md
    assert (res / "blogcatalog_f1.png").is_file() and (res / "blogcatalog_curves.png").is_file()


def test_social_report(tmp_path):
    """The ratio to the evaluator's degree baseline in the CSV and the table; blank without one."""
    import csv

    res = tmp_path / "results"
    d = stored_run(res / "runs" / "blogcatalog" / "logq", command="python -m jgraph.train x=1")
    m = json.loads((d / "metrics.json").read_text())
    m["degree_baseline_mrr"] = {"valid": 0.02, "test": 0.025}
    (d / "metrics.json").write_text(json.dumps(m))
    stored_run(res / "runs" / "coauthor" / "pbg")
    assert load_script("social_blogcatalog", "report").main(["--results", str(res)]) == 0
    rows = list(csv.DictReader((res / "results.csv").open()))
    assert [(r["graph"], r["variant"]) for r in rows] == [("blogcatalog", "logq"), ("coauthor", "pbg")]
    mrr = _fixture_value("test.filtered.avg.mrr")
    assert float(rows[0]["ratio"]) == pytest.approx(mrr / 0.025) and rows[1]["ratio"] == ""
    assert float(rows[0]["test MRR"]) == pytest.approx(mrr)
    md = (res / "README.md").read_text()
    assert f"| blogcatalog | logq | {mrr:.4f} |" in md and "python -m jgraph.train x=1" in md


def test_sweeps_report(tmp_path):
    import yaml

    res = tmp_path / "results"
    for i, lr in enumerate((0.05, 0.1)):
        d = stored_run(res / "grid" / f"optimizer.lr={lr}")
        overrides = ["+experiment=fb15k237", f"optimizer.lr={lr}"]
        (d / ".hydra" / "overrides.yaml").write_text(yaml.safe_dump(overrides))
        m = json.loads((d / "metrics.json").read_text())
        m["eval"]["valid"]["filtered"]["avg"]["mrr"] = 0.1 * (i + 1)
        (d / "metrics.json").write_text(json.dumps(m))
    assert load_script("sweeps_fb15k237", "report").main(["--results", str(res)]) == 0
    md = (res / "README.md").read_text()
    assert "## Grid sweep" in md and "## Optuna" not in md and "](grid/summary.png)" in md
    assert md.index("| 1 | 0.1 | 0.2000") < md.index("| 2 | 0.05 | 0.1000")
