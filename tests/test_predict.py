"""Prediction by name (jgraph/cli/predict.py): the top-k of (h, r, ?) and (?, r, t) are the exact
scorer's best candidates over every partition, known answers are marked (and left out with
--filtered), and unknown names are errors that list close matches."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
from helpers import REPO, numpy_query_scores, read_npy_export

from jgraph.cli.export import export
from jgraph.cli.predict import UnknownName, close_matches, predict
from jgraph.data.prepared import train_edges
from jgraph.trained import open_run

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration


def _reference(export_dir, h: int | None, r: int, t: int | None) -> np.ndarray:
    """Every entity's score as the answer, in plain numpy from the run's npy export (not the
    model code predict uses)."""
    man, emb, params = read_npy_export(export_dir)
    side = 1 if h is not None else 0
    return numpy_query_scores(man, emb, params, side, np.array([h if side else t]), r)[0]


def _known(run, side: int, fixed: int, r: int) -> set[int]:
    edges = [train_edges(run.data()), *run.data().splits.values()]
    out = set()
    for e in edges:
        f, a = (e.rhs, e.lhs) if side == 0 else (e.lhs, e.rhs)
        out |= set(a[(f == fixed) & (e.rel == r)].tolist())
    return out


@pytest.mark.parametrize("side", [0, 1])
def test_top_k_is_the_exact_scorers_and_marks_known_answers(run_dir, side: int, tmp_path) -> None:
    export(str(run_dir), "npy", str(tmp_path / "npy"))
    run = open_run(str(run_dir))
    names = run.names("entity").to_pylist()
    tr = train_edges(run.data())
    h, r, t = int(tr.lhs[0]), int(tr.rel[0]), int(tr.rhs[0])
    rel_name = run.ds.relation_names[r]
    kw = {"head": names[h]} if side == 1 else {"tail": names[t]}
    got = predict(run, rel_name, k=15, **kw)
    ref = _reference(tmp_path / "npy", h if side == 1 else None, r, t if side == 0 else None)
    order = np.argsort(-ref, kind="stable")[:15]
    assert [a.id for a in got] == order.tolist()
    np.testing.assert_allclose([a.score for a in got], ref[order], rtol=1e-5, atol=1e-5)
    assert [a.name for a in got] == [names[i] for i in order]
    known = _known(run, side, h if side == 1 else t, r)
    assert (t if side == 1 else h) in known
    assert [a.known for a in got] == [i in known for i in order]
    filt = predict(run, rel_name, k=15, filtered=True, **kw)
    rest = [i for i in np.argsort(-ref, kind="stable") if i not in known][:15]
    assert [a.id for a in filt] == rest and not any(a.known for a in filt)
    run.close()


def test_unknown_names_list_close_matches(run_dir) -> None:
    run = open_run(str(run_dir))
    with pytest.raises(UnknownName, match=r"unknown entity 'ent1x'; close matches: 'ent1'"):
        predict(run, "rel1", head="ent1x")
    with pytest.raises(UnknownName, match=r"unknown relation 'Rel1'; close matches: 'rel1'"):
        predict(run, "Rel1", tail="ent1")
    with pytest.raises(UnknownName, match="no close match"):
        predict(run, "rel1", head="zzzzzzzzzzzzzzzz")
    run.close()
    names = pa.array(["Paris", "paris_france", "Lyon", "Parma"])
    assert close_matches("PARIS", names)[:2] == ["Paris", "paris_france"]


def test_cli(run_dir) -> None:
    cmd = [sys.executable, "-m", "jgraph.cli.predict", str(run_dir), "--head", "ent1", "--relation", "rel1",
           "--k", "3"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "top 3 for (ent1, rel1, ?)" and len(lines) == 4
    p = subprocess.run(cmd[:4] + ["--head", "nobody", "--relation", "rel1"], cwd=REPO, capture_output=True,
                       text=True)
    assert p.returncode == 2 and "error: unknown entity 'nobody'" in p.stderr
