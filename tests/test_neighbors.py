"""Nearest neighbours (jgraph/cli/neighbors.py): exact top-k under the run's comparator equals a numpy
brute force over the exported vectors; the optional usearch index finds the same on a tiny table;
unknown names and types are clear errors."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from helpers import REPO

from jgraph.cli.export import export
from jgraph.cli.neighbors import neighbors
from jgraph.cli.predict import UnknownName
from jgraph.trained import open_run

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration


def test_exact_top_k_matches_numpy(run_dir, tmp_path) -> None:
    export(str(run_dir), "npy", str(tmp_path))
    emb = np.load(tmp_path / "entity.npy")
    names = json.loads((tmp_path / "entity_names.json").read_text())
    run = open_run(str(run_dir))
    assert run.cfg.model.comparator == "dot"
    for i in (0, 7, 42):
        got = neighbors(run, names[i], k=8)
        s = emb @ emb[i]
        s[i] = -np.inf
        order = np.argsort(-s, kind="stable")[:8]
        assert [n.id for n in got] == order.tolist()
        assert [n.name for n in got] == [names[j] for j in order]
        np.testing.assert_allclose([n.score for n in got], s[order], rtol=1e-5)
    run.close()


def test_usearch_index_when_installed(run_dir) -> None:
    pytest.importorskip("usearch")
    run = open_run(str(run_dir))
    exact = neighbors(run, "ent5", k=5)
    approx = neighbors(run, "ent5", k=5, ann="usearch")
    assert [n.id for n in approx] == [n.id for n in exact]  # 150 rows: the graph search is exhaustive
    np.testing.assert_allclose([n.score for n in approx], [n.score for n in exact], rtol=1e-5)
    run.close()


def test_unknown_entity_and_type(run_dir) -> None:
    run = open_run(str(run_dir))
    with pytest.raises(UnknownName, match="close matches: 'ent12'"):
        neighbors(run, "ent12_")
    with pytest.raises(UnknownName, match="unknown entity type 'user'"):
        neighbors(run, "ent1", entity_type="user")
    run.close()
    cmd = [sys.executable, "-m", "jgraph.cli.neighbors", str(run_dir), "--entity", "ent3", "--k", "2",
           "--json"]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rows = [json.loads(x) for x in p.stdout.splitlines()]
    assert [r["rank"] for r in rows] == [1, 2] and all(r["name"] != "ent3" for r in rows)
