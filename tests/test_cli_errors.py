"""Every command's user errors (issue 25, issue 24 item 11): one line on stderr naming the file, name
or value, exit status 2, no traceback; an unfinished run is a warning, not an error. The commands run
in-process through `jgraph.cli.main.main` (what the `jgraph` console command calls); the train
command and `python -m` forms run as real processes."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jgraph.cli.main import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def assert_one_line_error(code: int, err: str, *words: str) -> None:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    for w in words:
        assert w in lines[0], lines[0]


def test_a_missing_or_empty_run_directory(capsys, tmp_path: Path) -> None:
    for cmd in ("evaluate", "export", "predict", "neighbors"):
        extra = {"export": ["--out", tmp_path / "o"], "predict": ["--head", "a", "--relation", "r"],
                 "neighbors": ["--entity", "a"]}.get(cmd, [])
        code, _, err = run_cli(capsys, cmd, tmp_path / "nope", *extra)
        assert_one_line_error(code, err, f"jgraph {cmd}: error:", str(tmp_path / "nope"), "no such run")
    code, _, err = run_cli(capsys, "evaluate", tmp_path)  # a folder, but no checkpoint in it
    assert_one_line_error(code, err, str(tmp_path), "no checkpoint")


def test_bad_names_and_options_on_a_trained_run(capsys, run_dir: Path, tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "predict", run_dir, "--head", "ent1x", "--relation", "rel1")
    assert_one_line_error(code, err, "unknown entity 'ent1x'", "'ent1'")  # a close match offered
    code, _, err = run_cli(capsys, "predict", run_dir, "--head", "ent1", "--relation", "rell")
    assert_one_line_error(code, err, "unknown relation 'rell'")
    code, _, err = run_cli(capsys, "predict", run_dir, "--head", "ent1", "--relation", "rel1", "--k", "0")
    assert_one_line_error(code, err, "k must be a positive whole number, got 0")
    code, _, err = run_cli(capsys, "neighbors", run_dir, "--entity", "ent1", "--k", "-3")
    assert_one_line_error(code, err, "got -3")
    code, _, err = run_cli(capsys, "neighbors", run_dir, "--entity", "ent1", "--type", "user")
    assert_one_line_error(code, err, "unknown entity type 'user'")
    code, _, err = run_cli(capsys, "predict", run_dir, "--head", "ent1", "--relation", "rel1", "--k", "x")
    assert_one_line_error(code, err, "--k", "'x'")  # argparse's own errors are one line too
    code, _, err = run_cli(capsys, "export", run_dir, "--format", "xml", "--out", tmp_path / "x")
    assert_one_line_error(code, err, "--format", "'xml'")
    (tmp_path / "file").write_text("")
    code, _, err = run_cli(capsys, "export", run_dir, "--out", tmp_path / "file" / "sub")
    assert_one_line_error(code, err, str(tmp_path / "file"))
    code, _, err = run_cli(capsys, "evaluate", run_dir, "--split", "nosuch")
    assert_one_line_error(code, err, "no nosuch split")
    code, _, err = run_cli(capsys, "node-classification", run_dir, "--labels", tmp_path / "labels.tsv")
    assert_one_line_error(code, err, str(tmp_path / "labels.tsv"))
    code, _, err = run_cli(capsys, "predikt", run_dir)
    assert_one_line_error(code, err, "unknown command 'predikt'", "predict")


def test_launch_needs_a_process(capsys) -> None:
    code, _, err = run_cli(capsys, "launch", "-n", "0", "--", "+debug=tiny")
    assert_one_line_error(code, err, "-n must be >= 1, got 0")


def test_an_unfinished_run_is_a_warning(capsys, caplog, run_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    manifest = run / "checkpoint" / "checkpoint.json"
    m = json.loads(manifest.read_text())
    done = m["progress"]["epoch"]
    m["config"]["training"]["num_epochs"] = done + 6
    manifest.write_text(json.dumps(m))
    code, out, err = run_cli(capsys, "predict", run, "--head", "ent1", "--relation", "rel1", "--k", "2")
    assert code == 0, err
    # a logged warning (on stderr outside pytest, which captures the log)
    assert f"{run} stopped at epoch {done} of {done + 6}; using its last checkpoint" in caplog.text
    assert len(out.strip().splitlines()) == 3  # the header and two answers


def test_corrupt_gzip_input_names_the_file(capsys, tmp_path: Path) -> None:
    rows = "".join(f"e{i}\tr{i % 3}\te{i * 7 % 50}\n" for i in range(20000)).encode()
    truncated, garbage = tmp_path / "trunc.tsv.gz", tmp_path / "garbage.tsv.gz"
    truncated.write_bytes(gzip.compress(rows)[:3000])
    garbage.write_bytes(b"not gzip at all\n" * 10)
    for f in (truncated, garbage):
        code, _, err = run_cli(capsys, "import", tmp_path / f"out_{f.stem}", "--train", f)
        assert_one_line_error(code, err, str(f), "truncated or corrupt")
    code, _, err = run_cli(capsys, "import", tmp_path / "o", "--train", tmp_path / "missing.tsv")
    assert_one_line_error(code, err, str(tmp_path / "missing.tsv"))


def _train(*argv: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jgraph.train", *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize("argv, words", [
    (["data.folder=x"], ["unknown config key", "data.folder", "did you mean", "data.format"]),
    (["+experiment=fb15k23"], ["experiment=fb15k23", "no such preset", "fb15k237"]),
    (["model.dimension=abc"], ["model.dimension", "'abc'"]),
    (["optimizer.lr=-1"], ["optimizer.lr"]),
])
def test_train_config_mistakes(tmp_path: Path, argv: list[str], words: list[str]) -> None:
    res = _train(*argv, f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert_one_line_error(res.returncode, res.stderr, *words)
    assert "+data.folder" not in res.stderr  # not Hydra's advice to add the key


def test_train_on_a_missing_folder_names_it(tmp_path: Path) -> None:
    res = _train("+experiment=fb15k237", "+debug=tiny", f"data.path={tmp_path / 'mygraph'}",
                 f"hydra.run.dir={tmp_path / 'r'}", cwd=tmp_path)
    assert_one_line_error(res.returncode, res.stderr, str(tmp_path / "mygraph" / "train.tsv.gz"),
                          "'mygraph'", f"data.path={tmp_path / 'mygraph'}")
    assert "jgraph.data.download fb15k237" not in res.stderr  # not the recipe's download


def test_python_m_forms_are_one_line_too(tmp_path: Path) -> None:
    for argv in (["-m", "jgraph", "evaluate", str(tmp_path / "nope")],
                 ["-m", "jgraph.cli.evaluate", str(tmp_path / "nope")]):
        res = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=300)
        assert_one_line_error(res.returncode, res.stderr, "no such run directory")
