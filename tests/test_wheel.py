"""The package as a user gets it (issue 25): the wheel is built from a snapshot of the source, installed
(not editable) into a fresh virtual environment, and run from an empty folder: `jgraph train
+debug=tiny`, `python -m jgraph.train +experiment=fb15k237 +debug=tiny` on a tiny FB15k-237-shaped
fixture, and the issue's API snippet, which then deletes the training data and loads, predicts and
exports again. No download: the new environment sees this environment's installed dependencies
through a .pth line (its jgraph comes only from the wheel), and the wheel is built without isolation."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from helpers import REPO, write_toy_tsv

SNIPPET = """
import shutil, sys
import jgraph
assert "/site-packages/jgraph/" in jgraph.__file__.replace("\\\\", "/"), jgraph.__file__
run = jgraph.fit(["+debug=tiny"], run_dir="RUN")
assert run.run_dir.name == "RUN" and run.metrics["eval"]["test"]["filtered"]["avg"]["mrr"] > 0
model = jgraph.load("RUN")
assert model.entity_names("entity")[:3] == ["e0", "e1", "e2"]
assert model.embeddings("entity").shape == (300, 16)
assert model.score(["e1"], ["r1"], ["e2"]).shape == (1,)
top = model.predict(head="e1", relation="r1", k=10)
assert len(top) == 10 and top[0][1] >= top[-1][1]
assert len(model.neighbors("e1", k=10)) == 10
assert model.evaluate(split="test")["filtered"]["avg"]["mrr"] > 0
# the FB15k-237-shaped run, after its data is gone
fb = sys.argv[1]
shutil.rmtree(sys.argv[2])
m = jgraph.load(fb)
answers = m.predict(head="ent3", relation="rel1", k=5)
assert len(answers) == 5, answers
m.export("EXPORT", "tsv")
rows = open("EXPORT/entities.tsv").read().splitlines()
assert len(rows) == len(m.entity_names()) and rows[0].count("\\t") == 16
print("snippet ok", answers[0])
"""


def _run(cmd: list[str], cwd: Path, env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stdout[-2000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> dict:
    """A fresh venv with the built wheel installed (not editable)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in ("jgraph", "models"):
        shutil.copytree(REPO / name, src / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    dist = tmp / "dist"
    pip = [sys.executable, "-m", "pip"]
    _run([*pip, "wheel", str(src), "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(dist)],
         cwd=tmp, env=os.environ.copy())
    wheel = next(dist.glob("jgraph-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "jgraph/conf/train.yaml" in names and "jgraph/conf/experiment/fb15k237.yaml" in names
    assert any(n.startswith("models/") for n in names) and not any(n.startswith("tests/") for n in names)
    env_dir = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True, timeout=120)
    py = env_dir / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # this environment's dependencies (not its editable jgraph: .pth files there are not run)
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    _run([*pip, "--python", str(py), "install", "--no-deps", "--no-index", "-q", str(wheel)], cwd=tmp,
         env=os.environ.copy())
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "JGRAPH_DATA", "VIRTUAL_ENV")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return {"py": py, "bin": env_dir / "bin", "env": env, "tmp": tmp}


def test_the_installed_wheel_runs_from_an_empty_folder(venv) -> None:
    work = venv["tmp"] / "empty"
    work.mkdir()
    env = venv["env"]
    res = _run([str(venv["py"]), "-c", "import jgraph, sys; print(jgraph.__file__); "
                "assert 'jax' not in sys.modules"], cwd=work, env=env)
    assert str(venv["tmp"] / "venv") in res.stdout and str(REPO) not in res.stdout  # the wheel's copy
    _run([str(venv["bin"] / "jgraph"), "train", "+debug=tiny", "hydra.run.dir=tiny"], cwd=work, env=env)
    assert (work / "tiny" / "metrics.json").is_file()
    assert (work / "tiny" / "checkpoint" / "mapping.json").is_file()
    # a tiny graph laid out as the fb15k237 recipe expects: <data.root>/FB15k-237/{train,valid,test}.tsv.gz
    data = work / "data"
    for split, f in write_toy_tsv(venv["tmp"] / "tsv").items():
        (data / "FB15k-237").mkdir(parents=True, exist_ok=True)
        (data / "FB15k-237" / f"{split}.tsv.gz").write_bytes(gzip.compress(f.read_bytes()))
    _run([str(venv["py"]), "-m", "jgraph.train", "+experiment=fb15k237", "+debug=tiny", f"data.root={data}",
          "hydra.run.dir=fb"], cwd=work, env=env)
    assert (work / "fb" / "checkpoint" / "names" / "0.parquet").is_file()
    res = _run([str(venv["py"]), "-c", SNIPPET, "fb", str(data)], cwd=work, env=env, timeout=600)
    assert "snippet ok" in res.stdout and not data.exists()
    res = subprocess.run([str(venv["bin"] / "jgraph"), "evaluate", "fb"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "needs the run's data files" in res.stderr
