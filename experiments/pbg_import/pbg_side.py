"""PyTorch-BigGraph's side of the import check; run with PBG's own venv's python (never jgraph's).

    PBG=/tmp/pbgvenv/bin/python
    $PBG pbg_side.py train WORK --parts 1 --epochs 2     # FB15k-237 -> PBG's files, config, checkpoint
    $PBG pbg_side.py score WORK TRIPLES.json OUT.json    # PBG's own model scores the triples
    $PBG pbg_side.py eval WORK OUT.json                  # torchbiggraph_eval's sampled protocol

`train` converts FB15k-237 (../shared/data, gunzipped into WORK/raw) with PBG's importer, writes
WORK/config.py (PBG's FB15k settings: torchbiggraph/examples/configs/fb15k_config.py, with
`--epochs` and `--parts`) and trains on the train edge path. `score` loads the checkpoint exactly as
torchbiggraph_eval does (make_model, load_state_dict, set_embeddings) and runs the model's own
forward on the triples, one bucket at a time: the forward score c(x, h_r(y)) (lhs_pos_scores) and
the reverse one c(g_r(x), y) (rhs_pos_scores).
"""

from __future__ import annotations

import argparse
import gzip
import json
import logging
import shutil
import sys
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[3] / "shared" / "data" / "FB15k-237"
SPLITS = ("train", "valid", "test")


def config_text(work: Path, parts: int, epochs: int) -> str:
    """PBG's FB15k config (examples/configs/fb15k_config.py), paths under WORK."""
    return f'''def get_torchbiggraph_config():
    config = dict(
        entity_path={str(work / "data")!r},
        edge_paths=[{", ".join(repr(str(work / "data" / f"{s}_partitioned")) for s in SPLITS)}],
        checkpoint_path={str(work / "model")!r},
        entities={{"all": {{"num_partitions": {parts}}}}},
        relations=[{{"name": "all_edges", "lhs": "all", "rhs": "all", "operator": "complex_diagonal"}}],
        dynamic_relations=True,
        dimension=400,
        global_emb=False,
        comparator="dot",
        num_epochs={epochs},
        num_uniform_negs=1000,
        loss_fn="softmax",
        lr=0.1,
        eval_fraction=0,
        workers=2,
    )
    return config
'''


def load(work: Path, **changes):
    import attr
    from torchbiggraph.config import ConfigFileLoader

    cfg = ConfigFileLoader().load_config(str(work / "config.py"))
    return attr.evolve(cfg, **changes) if changes else cfg


def train(work: Path, parts: int, epochs: int) -> None:
    from torchbiggraph.converters.import_from_tsv import convert_input_data
    from torchbiggraph.train import train as pbg_train
    from torchbiggraph.util import SubprocessInitializer, setup_logging

    setup_logging()
    raw = work / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for s in SPLITS:
        with gzip.open(DATA / f"{s}.tsv.gz", "rb") as src, open(raw / f"{s}.txt", "wb") as dst:
            shutil.copyfileobj(src, dst)
    (work / "config.py").write_text(config_text(work, parts, epochs))
    cfg = load(work)
    convert_input_data(cfg.entities, cfg.relations, cfg.entity_path, cfg.edge_paths,
                       [raw / f"{s}.txt" for s in SPLITS], lhs_col=0, rhs_col=2, rel_col=1,
                       dynamic_relations=True)
    t0 = time.perf_counter()
    pbg_train(load(work, edge_paths=[cfg.edge_paths[0]]), subprocess_init=SubprocessInitializer())
    print(json.dumps({"train_seconds": time.perf_counter() - t0}))


def score(work: Path, triples_file: Path, out: Path) -> None:
    """PBG's forward on the triples [[head, relation, tail] names], bucket by bucket."""
    import torch
    from torchbiggraph.checkpoint_manager import CheckpointManager
    from torchbiggraph.edgelist import EdgeList
    from torchbiggraph.entitylist import EntityList
    from torchbiggraph.model import make_model
    from torchbiggraph.types import Side

    cfg = load(work)
    data = work / "data"
    parts = cfg.entities["all"].num_partitions
    where = {}
    for p in range(parts):
        for i, n in enumerate(json.loads((data / f"entity_names_all_{p}.json").read_text())):
            where[n] = (p, i)
    rel_id = {n: i for i, n in enumerate(json.loads((data / "dynamic_rel_names.json").read_text()))}
    triples = json.loads(triples_file.read_text())
    ckpt = CheckpointManager(cfg.checkpoint_path)
    model = make_model(cfg)
    state, _ = ckpt.maybe_read_model()
    model.load_state_dict(state, strict=False)
    model.eval()
    fwd, rev = [0.0] * len(triples), [0.0] * len(triples)
    buckets: dict = {}
    for k, (h, _, t) in enumerate(triples):
        buckets.setdefault((where[h][0], where[t][0]), []).append(k)
    with torch.no_grad():
        for (lp, rp), idx in sorted(buckets.items()):
            model.set_embeddings("all", torch.nn.Parameter(ckpt.read("all", lp)[0]), Side.LHS)
            model.set_embeddings("all", torch.nn.Parameter(ckpt.read("all", rp)[0]), Side.RHS)
            lhs = torch.tensor([where[triples[k][0]][1] for k in idx], dtype=torch.long)
            rhs = torch.tensor([where[triples[k][2]][1] for k in idx], dtype=torch.long)
            rel = torch.tensor([rel_id[triples[k][1]] for k in idx], dtype=torch.long)
            scores = model(EdgeList(EntityList.from_tensor(lhs), EntityList.from_tensor(rhs), rel))
            for k, a, b in zip(idx, scores[0].tolist(), scores[1].tolist(), strict=True):
                fwd[k], rev[k] = a, b
    out.write_text(json.dumps({"lhs_pos_scores": fwd, "rhs_pos_scores": rev,
                               "version": ckpt.checkpoint_version}))


def evaluate(work: Path, out: Path) -> None:
    """torchbiggraph_eval on the test edge path: its sampled protocol (config batch_size 1000,
    num_batch_negs 50, num_uniform_negs 1000; ranks among the chunk's batch + uniform negatives)."""
    from torchbiggraph.eval import do_eval_and_report_stats
    from torchbiggraph.util import SubprocessInitializer, setup_logging

    setup_logging()
    cfg = load(work)
    cfg = load(work, edge_paths=[cfg.edge_paths[2]])
    t0 = time.perf_counter()
    *_, (_, _, stats) = do_eval_and_report_stats(cfg, subprocess_init=SubprocessInitializer())
    res = {"count": stats.count, "seconds": time.perf_counter() - t0,
           **{k: float(v) for k, v in stats.metrics.items()}}
    out.write_text(json.dumps(res))
    print(json.dumps(res))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("command", choices=["train", "score", "eval"])
    ap.add_argument("work", type=Path)
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--parts", type=int, default=1)
    ap.add_argument("--epochs", type=int, default=2)
    a = ap.parse_args()
    logging.basicConfig(level=logging.INFO)
    if a.command == "train":
        train(a.work, a.parts, a.epochs)
    elif a.command == "score":
        score(a.work, *a.files)
    else:
        evaluate(a.work, *a.files)
    return 0


if __name__ == "__main__":
    sys.exit(main())
