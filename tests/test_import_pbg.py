"""`jgraph import-pbg`: a tiny checkpoint in PyTorch-BigGraph's exact file layout (written here with
h5py: embeddings_{type}_{part}.vN.h5, model.vN.h5 under PBG's public parameter names,
checkpoint_version.txt, entity count/name files, dynamic_rel_count.txt, edge buckets) imports and
scores as an independent numpy implementation of PBG's formula says (pbg-reference §3.1, §3.3);
the importer's errors are one line each, exit status 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

D = 6
PBG_PARAMS = {  # operator -> {PBG name: shape of one relation's parameter}
    "none": {}, "translation": {"translation": (D,)}, "diagonal": {"diagonal": (D,)},
    "linear": {"linear_transformation": (D, D)},
    "affine": {"linear_transformation": (D, D), "translation": (D,)},
    "complex_diagonal": {"real": (D // 2,), "imag": (D // 2,)},
}
DYNAMIC_NAME = {"translation": "translations", "diagonal": "diagonals",
                "linear_transformation": "linear_transformations", "real": "real", "imag": "imag"}


# ---------------------------------------------------------------- PBG's files, written as PBG does
def _h5(path: Path, datasets: dict[str, np.ndarray], group: str | None = None, fmt: int = 1) -> None:
    with h5py.File(path, "w") as f:
        f.attrs["format_version"] = fmt
        g = f.create_group(group, track_order=True) if group else f
        for name, a in datasets.items():
            g.create_dataset(name, data=a)


def write_pbg(root: Path, config: dict, counts: dict[str, list[int]], rels: list[tuple[str, str]] | None,
              seed: int = 0, version: int = 3) -> dict:
    """A PBG checkpoint of `config` (a dict written as a Python config file), random tables and
    operator parameters; returns {"tables": {(type, part): rows}, "names": ..., "params": ...}."""
    rng = np.random.default_rng(seed)
    ent, ckpt = root / "entities", root / "model"
    ent.mkdir(parents=True)
    ckpt.mkdir()
    (root / "config.py").write_text(
        "# a PBG config\nimport os  # imports are ignored unless used\n\n\n"
        "def get_torchbiggraph_config():\n"
        f"    config = dict({', '.join(f'{k}={v!r}' for k, v in config.items() if k != 'dimension')})\n"
        f"    config['dimension'] = {config['dimension']}\n"
        "    return config\n")
    tables, names = {}, {}
    for t, sizes in counts.items():
        for p, n in enumerate(sizes):
            (ent / f"entity_count_{t}_{p}.txt").write_text(f"{n}\n")
            names[(t, p)] = [f"{t}{p}_{i}" for i in range(n)]
            (ent / f"entity_names_{t}_{p}.json").write_text(json.dumps(names[(t, p)]))
            tables[(t, p)] = rng.standard_normal((n, D)).astype(np.float32)
            _h5(ckpt / f"embeddings_{t}_{p}.v{version}.h5", {"embeddings": tables[(t, p)]})
    params: dict[str, np.ndarray] = {}
    if config.get("dynamic_relations"):
        (ent / "dynamic_rel_count.txt").write_text(f"{len(rels)}\n")
        (ent / "dynamic_rel_names.json").write_text(json.dumps([n for n, _ in rels]))
        op = config["relations"][0]["operator"]
        for side in ("lhs", "rhs"):
            for pname, shape in PBG_PARAMS[op].items():
                params[f"relations/0/operator/{side}/{DYNAMIC_NAME[pname]}"] = \
                    rng.standard_normal((len(rels), *shape)).astype(np.float32)
    else:
        for i, r in enumerate(config["relations"]):
            for pname, shape in PBG_PARAMS[r.get("operator", "none")].items():
                params[f"relations/{i}/operator/rhs/{pname}"] = rng.standard_normal(shape).astype(np.float32)
    if config.get("global_emb", True):
        for t in config["entities"]:
            params[f"entities/{t}/global_embedding"] = rng.standard_normal(D).astype(np.float32)
    _h5(ckpt / f"model.v{version}.h5", params, group="model")
    (ckpt / "checkpoint_version.txt").write_text(f"{version}\n")
    return {"tables": tables, "names": names, "params": params}


# ---------------------------------------------------------------- PBG's score in plain numpy
def _operator(op: str, p: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    if op == "none":
        return x
    if op == "translation":
        return x + p["translation"]
    if op == "diagonal":
        return x * p["diagonal"]
    if op == "linear":
        return p["linear_transformation"] @ x
    if op == "affine":
        return p["linear_transformation"] @ x + p["translation"]
    h = D // 2
    re, im = x[:h], x[h:]
    return np.concatenate([re * p["real"] - im * p["imag"], re * p["imag"] + im * p["real"]])


def _compare(comparator: str, a: np.ndarray, b: np.ndarray, bias: bool) -> float:
    extra = 0.0
    if bias:
        extra, a, b = a[0] + b[0], a[1:], b[1:]
    if comparator == "cos":
        a, b = a / np.linalg.norm(a), b / np.linalg.norm(b)
    if comparator in ("dot", "cos"):
        s = float(a @ b)
    elif comparator == "squared_l2":
        s = -float(((a - b) ** 2).sum())
    else:
        s = -float(np.sqrt(max(((a - b) ** 2).sum(), 1e-30)))
    return s + extra


def pbg_score(config: dict, made: dict, head: tuple, rel: int, tail: tuple, lhs_t: str, rhs_t: str,
              side: str = "rhs") -> float:
    """PBG's score of (head, rel, tail): standard mode c(x, g_r(y)); dynamic mode side 'rhs'
    (reverse: the lhs operator on the head, c(g_r(x), y)) or 'lhs' (forward: c(x, h_r(y)))."""
    x = made["tables"][head[:2]][head[2]].astype(np.float64)
    y = made["tables"][tail[:2]][tail[2]].astype(np.float64)
    if config.get("global_emb", True):
        x = x + made["params"][f"entities/{lhs_t}/global_embedding"]
        y = y + made["params"][f"entities/{rhs_t}/global_embedding"]
    comparator, bias = config.get("comparator", "cos"), config.get("bias", False)
    if config.get("dynamic_relations"):
        # PBG's lhs operator acts on the lhs entity (scored against rhs negatives), its rhs
        # operator on the rhs entity (against lhs negatives)
        op = config["relations"][0]["operator"]
        acts_on = "lhs" if side == "rhs" else "rhs"
        p = {k: made["params"][f"relations/0/operator/{acts_on}/{DYNAMIC_NAME[k]}"][rel]
             for k in PBG_PARAMS[op]}
        if side == "rhs":
            return _compare(comparator, _operator(op, p, x), y, bias)
        return _compare(comparator, x, _operator(op, p, y), bias)
    op = config["relations"][rel].get("operator", "none")
    p = {k: made["params"][f"relations/{rel}/operator/rhs/{k}"] for k in PBG_PARAMS[op]}
    return _compare(comparator, x, _operator(op, p, y), bias)


# ---------------------------------------------------------------- the tests
STANDARD = {
    "entity_path": "entities", "edge_paths": [], "checkpoint_path": "model",
    "entities": {"user": {"num_partitions": 2}, "item": {"num_partitions": 1}},
    "relations": [
        {"name": "follows", "lhs": "user", "rhs": "user", "operator": "translation"},
        {"name": "likes", "lhs": "user", "rhs": "item", "operator": "diagonal"},
        {"name": "liked_by", "lhs": "item", "rhs": "user", "operator": "linear"},
        {"name": "buys", "lhs": "user", "rhs": "item", "operator": "affine", "weight": 0.5},
        {"name": "similar", "lhs": "item", "rhs": "item"},
    ],
    "dimension": D, "global_emb": True, "bias": True, "loss_fn": "softmax", "lr": 0.1,
}


def _import(root: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "jgraph", "import-pbg", str(root / "config.py"),
                           str(root / "model"), "--out", str(root / "run"),
                           "--entity-path", str(root / "entities"), *extra],
                          capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("comparator", ["cos", "l2", "squared_l2"])
def test_standard_relations_score_as_pbg(tmp_path, comparator):
    config = {**STANDARD, "comparator": comparator}
    made = write_pbg(tmp_path, config, {"user": [4, 3], "item": [5]}, None)
    res = _import(tmp_path, "--no-edges")
    assert res.returncode == 0, res.stderr
    import jgraph

    model = jgraph.load(tmp_path / "run")
    triples, want = [], []
    rng = np.random.default_rng(1)
    sizes = {"user": [4, 3], "item": [5]}
    for rel, r in enumerate(config["relations"]):
        for _ in range(6):
            h, t = ((typ, p := int(rng.integers(len(sizes[typ]))), int(rng.integers(sizes[typ][p])))
                    for typ in (r["lhs"], r["rhs"]))
            triples.append((made["names"][h[:2]][h[2]], r["name"], made["names"][t[:2]][t[2]]))
            want.append(pbg_score(config, made, h, rel, t, r["lhs"], r["rhs"]))
    got = model.score(*map(list, zip(*triples, strict=True)))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # every row lands where PBG had it: partition p, offset i -> the same name, the same vector
    emb, names = model.embeddings("user"), model.entity_names("user")
    for (t, p), rows in made["tables"].items():
        if t == "user":
            for i, n in enumerate(made["names"][(t, p)]):
                # (embeddings() adds the type's global vector, as PBG's export does)
                want_row = rows[i] + made["params"]["entities/user/global_embedding"]
                np.testing.assert_allclose(emb[names.index(n)], want_row, rtol=1e-6)
    assert model.config.model.comparator == comparator and model.config.model.bias
    assert not model.config.model.center_partitions  # PBG has no read-out shift
    model.close()


DYNAMIC = {
    "entity_path": "entities", "edge_paths": ["edges/train", "edges/test"], "checkpoint_path": "model",
    "entities": {"all": {"num_partitions": 2}},
    "relations": [{"name": "all_edges", "lhs": "all", "rhs": "all", "operator": "complex_diagonal"}],
    "dynamic_relations": True, "dimension": D, "global_emb": False, "comparator": "dot",
    "num_uniform_negs": 10, "loss_fn": "softmax",
}
DYN_RELS = [("r/a", None), ("r/b", None), ("r/c", None)]


def _write_edges(root: Path, sizes: list[int], n: int, seed: int) -> dict:
    """PBG edge buckets edges_{i}_{j}.h5 (offsets inside partitions) for train and test."""
    rng = np.random.default_rng(seed)
    out = {}
    for split in ("train", "test"):
        d = root / "edges" / split
        d.mkdir(parents=True)
        out[split] = []
        for i in range(len(sizes)):
            for j in range(len(sizes)):
                lhs = rng.integers(sizes[i], size=n)
                rhs = rng.integers(sizes[j], size=n)
                rel = rng.integers(len(DYN_RELS), size=n)
                _h5(d / f"edges_{i}_{j}.h5", {"lhs": lhs, "rhs": rhs, "rel": rel})
                out[split] += [((i, a), r, (j, b)) for a, r, b in zip(lhs, rel, rhs, strict=True)]
    return out


def test_dynamic_relations_both_directions_and_tools(tmp_path):
    sizes = [6, 5]
    made = write_pbg(tmp_path, DYNAMIC, {"all": sizes}, DYN_RELS, seed=2)
    edges = _write_edges(tmp_path, sizes, 8, seed=3)
    res = subprocess.run([sys.executable, "-m", "jgraph.cli.import_pbg", "config.py", "model",
                          "--out", "run"], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    import jax.numpy as jnp

    from jgraph.trained import load_run

    run = load_run(str(tmp_path / "run"))
    assert run.cfg.model.reciprocal and run.ds.relation_names == [n for n, _ in DYN_RELS]
    names = list(run.ds.entity_names["all"].to_pylist())
    rows = [((p, i), names.index(n)) for p in range(2) for i, n in enumerate(made["names"][("all", p)])]
    for side, side_name in ((1, "rhs"), (0, "lhs")):
        for (hp, h), (tp, t) in [(rows[0], rows[7]), (rows[3], rows[10]), (rows[9], rows[2])]:
            for r in range(len(DYN_RELS)):
                head, tail = ("all", *hp), ("all", *tp)
                want = pbg_score(DYNAMIC, made, head, r, tail, "all", "all", side_name)
                fixed, cand = (h, t) if side == 1 else (t, h)
                s = run.model.query_scores(run.params, run.emb[fixed][None], jnp.array([0]),
                                           jnp.array([r]), run.emb[cand][None], jnp.int32(0), side)
                np.testing.assert_allclose(float(s[0, 0]), want, rtol=1e-5, atol=1e-5)
    # the edges came along as a prepared dataset: evaluate works and sees PBG's test edges
    ev = subprocess.run([sys.executable, "-m", "jgraph", "evaluate", str(tmp_path / "run"),
                         "--split", "test"], capture_output=True, text=True, timeout=300)
    assert ev.returncode == 0, ev.stderr
    out = json.loads((tmp_path / "run" / "eval_test.json").read_text())
    assert out["eval"]["test"]["filtered"]["rhs"]["count"] == len(edges["test"])
    from jgraph.trained import open_run

    opened = open_run(str(tmp_path / "run"))
    test = opened.data().splits["test"]
    got = sorted(zip(test.lhs.tolist(), test.rel.tolist(), test.rhs.tolist(), strict=True))
    want_ids = sorted((names.index(made["names"][("all", a[0])][a[1]]), int(r),
                       names.index(made["names"][("all", b[0])][b[1]])) for a, r, b in edges["test"])
    assert got == want_ids
    opened.close()
    ex = subprocess.run([sys.executable, "-m", "jgraph", "predict", str(tmp_path / "run"), "--head",
                         made["names"][("all", 0)][0], "--relation", "r/b", "--k", "3"],
                        capture_output=True, text=True, timeout=300)
    assert ex.returncode == 0, ex.stderr
    # export writes PBG's relation TSV: the parameters come back as PBG stored them
    ex = subprocess.run([sys.executable, "-m", "jgraph", "export", str(tmp_path / "run"), "--format", "tsv",
                         "--out", str(tmp_path / "emb")], capture_output=True, text=True, timeout=300)
    assert ex.returncode == 0, ex.stderr
    rows = [line.split("\t") for line in (tmp_path / "emb" / "relation_types.tsv").read_text().splitlines()]
    for name, side, _, param, _, *values in rows:
        stored = made["params"][f"relations/0/operator/{side}/{param}"][[n for n, _ in DYN_RELS].index(name)]
        np.testing.assert_allclose(np.array(values, np.float32), stored, rtol=1e-6)
    assert len(rows) == len(DYN_RELS) * 2 * 2
    nb = subprocess.run([sys.executable, "-m", "jgraph", "neighbors", str(tmp_path / "run"), "--entity",
                         made["names"][("all", 1)][0], "--k", "3"],
                        capture_output=True, text=True, timeout=300)
    assert nb.returncode == 0 and len(nb.stdout.strip().splitlines()) == 4, nb.stderr


def _cli_error(tmp_path: Path, *extra: str) -> str:
    res = _import(tmp_path, "--no-edges", *extra)
    assert res.returncode == 2, (res.returncode, res.stderr)
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in res.stderr, res.stderr
    return lines[0]


def test_missing_files_are_one_line(tmp_path):
    write_pbg(tmp_path, STANDARD, {"user": [4, 3], "item": [5]}, None)
    (tmp_path / "entities" / "entity_count_item_0.txt").unlink()
    (tmp_path / "entities" / "entity_names_item_0.json").unlink()
    assert "entity_count_item_0.txt: missing" in _cli_error(tmp_path)
    (tmp_path / "entities" / "entity_count_item_0.txt").write_text("5\n")
    (tmp_path / "model" / "embeddings_user_1.v3.h5").unlink()
    assert "embeddings_user_1.v3.h5: missing" in _cli_error(tmp_path)
    (tmp_path / "model" / "checkpoint_version.txt").unlink()
    assert "checkpoint_version.txt: missing" in _cli_error(tmp_path)


def test_version_mismatch_is_one_line(tmp_path):
    write_pbg(tmp_path, STANDARD, {"user": [4, 3], "item": [5]}, None)
    (tmp_path / "model" / "checkpoint_version.txt").write_text("4\n")  # v4 never written
    line = _cli_error(tmp_path)
    assert ".v4.h5: missing" in line and "has v3" in line and "version mismatch" in line
    (tmp_path / "model" / "checkpoint_version.txt").write_text("3\n")
    _h5(tmp_path / "model" / "embeddings_item_0.v3.h5", {"embeddings": np.zeros((5, D), np.float32)}, fmt=2)
    line = _cli_error(tmp_path)
    assert "embeddings_item_0.v3.h5: format_version 2" in line and "version mismatch" in line


def test_unsupported_operator_and_unsafe_config_are_one_line(tmp_path):
    write_pbg(tmp_path / "a", {**STANDARD}, {"user": [4, 3], "item": [5]}, None)
    text = (tmp_path / "a" / "config.py").read_text().replace("'translation'", "'rotate'", 1)
    (tmp_path / "a" / "config.py").write_text(text)
    line = _cli_error(tmp_path / "a")
    assert "operator 'rotate' has no jgraph counterpart" in line and "config.py" in line
    # a config that would run code is refused, never run
    marker = tmp_path / "ran"
    (tmp_path / "a" / "config.py").write_text(
        "def get_torchbiggraph_config():\n"
        f"    open({str(marker)!r}, 'w').write('x')\n    return dict(dimension=4)\n")
    line = _cli_error(tmp_path / "a")
    assert "config.py:2" in line and "never run" in line and not marker.exists()


def test_warm_start_from_an_imported_run(tmp_path):
    """storage.init_path=RUN: a jgraph run on TSV data starts from the imported rows, by name."""
    config = {**DYNAMIC, "entities": {"entity": {"num_partitions": 2}},
              "relations": [{**DYNAMIC["relations"][0], "lhs": "entity", "rhs": "entity"}]}
    made = write_pbg(tmp_path, config, {"entity": [6, 5]}, DYN_RELS, seed=4)
    assert _import(tmp_path, "--no-edges").returncode == 0
    data = tmp_path / "tsv"
    data.mkdir()
    ents = [n for p in range(2) for n in made["names"][("entity", p)]]
    rng = np.random.default_rng(0)
    heads, rels, tails = rng.integers(11, size=200), rng.integers(3, size=200), rng.integers(11, size=200)
    lines = [f"{ents[a]}\t{DYN_RELS[r][0]}\t{ents[b]}" for a, r, b in zip(heads, rels, tails, strict=True)]
    (data / "train.tsv").write_text("\n".join(lines) + "\n")
    res = subprocess.run([sys.executable, "-m", "jgraph.train", f"data.root={tmp_path}", "data.path=tsv",
                          "data.format=tsv", "data.train=train.tsv", "data.valid=null", "data.test=null",
                          "data.name=warm", f"model.dimension={D}", "model.operator=complex_diagonal",
                          "model.reciprocal=true", "training.num_epochs=0", "training.progress=false",
                          "eval.splits=[]", f"storage.init_path={tmp_path / 'run'}",
                          f"hydra.run.dir={tmp_path / 'warm'}"], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr[-2000:]
    import jgraph

    warm, imported = jgraph.load(tmp_path / "warm"), jgraph.load(tmp_path / "run")
    # (the warm run is unpartitioned: rows are matched by name across partitionings)
    wn, inn = warm.entity_names("entity"), imported.entity_names("entity")
    we, ie = warm.embeddings("entity"), imported.embeddings("entity")
    assert sorted(wn) == sorted(inn)
    for i, n in enumerate(wn):
        np.testing.assert_array_equal(we[i], ie[inn.index(n)])
    warm.close()
    imported.close()
