"""`python -m jgraph.train`: train, evaluate, and save metrics — a thin Hydra shell over `run`.

    python -m jgraph.train                          # built-in generated graph, < 1 min on 2 cores
    python -m jgraph.train +experiment=fb15k237     # a recipe from conf/experiment/
    python -m jgraph.train -m model.dimension=100,200 optimizer.lr=0.05,0.1   # a sweep

The run directory (Hydra's output dir) receives `metrics.json` (config, per-epoch history, final
evaluation), `metrics.jsonl` (one line per epoch) and the checkpoint. `main` returns the validation
MRR so optimizing sweepers can maximise it.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jgraph.config import TrainConfig, register_configs, to_config, validate
from jgraph.memory import peak_rss_mib

log = logging.getLogger("jgraph")
CONF_DIR = str(Path(__file__).resolve().parent.parent / "conf")


def load_plugins(names: list[str]) -> None:
    """Import the modules that register scorers (config key `plugins`)."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"plugins: cannot import {name!r}: {e}") from e


def check_names(cfg: TrainConfig) -> None:
    """Every scorer the config names is registered (checked before any data is read)."""
    from jgraph.scorer import COMPARATORS, LOSSES, OPERATORS, REGULARIZERS

    OPERATORS.get(cfg.model.operator)
    for r in cfg.relations:
        if r.operator:
            OPERATORS.get(r.operator)
    COMPARATORS.get(cfg.model.comparator)
    LOSSES.get(cfg.loss.name)
    if cfg.model.regularization_coef:
        REGULARIZERS.get(cfg.model.regularizer)


def run(cfg: Any, output_dir: str | None = None) -> dict[str, Any]:
    """Train and evaluate as `cfg` says; returns the metrics dict also written to metrics.json."""
    import jax
    from tqdm import tqdm

    from jgraph.data.dataset import load_dataset
    from jgraph.metrics import chance_mrr
    from jgraph.ranking import full_ranking, sampled_ranking
    from jgraph.storage.checkpoint import CheckpointStore
    from jgraph.tensorboard import EventLog
    from jgraph.trainer import Trainer

    logging.getLogger("jax").setLevel(logging.WARNING)
    cfg = to_config(cfg)
    validate(cfg)
    load_plugins(cfg.plugins)
    check_names(cfg)
    from jgraph.cluster import Cluster

    if cfg.distributed.num_processes > 1 and not cfg.storage.checkpoint_dir:
        raise ValueError("distributed training needs storage.checkpoint_dir on storage every process "
                         "reaches (or use python -m jgraph.launch, which sets one)")
    cluster = Cluster(cfg.distributed)  # before anything touches the JAX backend
    out = Path(output_dir or tempfile.mkdtemp(prefix="jgraph-run-"))
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    ds = load_dataset(cfg)
    sizes = ", ".join(f"{s} {len(e):,}" for s, e in ds.splits.items())
    ents = ", ".join(f"{t} {ds.num_entities(t):,}" for t in ds.entity_types)
    log.info("data %s: entities %s; %d relations; edges %s", ds.name, ents, ds.num_relations, sizes)
    ckpt = cfg.storage.checkpoint_dir or (str(out / "checkpoint") if cfg.storage.save else "memory://")
    store = CheckpointStore(ckpt, collect=cluster.primary)
    jsonl = open(out / "metrics.jsonl", "a")
    events = EventLog(out / "tensorboard" if cfg.training.tensorboard and cluster.primary else None)
    trainer: Trainer | None = None

    def on_epoch(epoch: int, stats: dict) -> None:
        e = cfg.eval
        if e.every_epochs and (epoch + 1) % e.every_epochs == 0 and e.every_split in ds.splits \
                and cluster.primary:
            emb, offsets = trainer.full_tables()
            res = full_ranking(trainer.model, trainer.state.params, emb, offsets, ds, e.every_split,
                               e, ["filtered"], e.every_max_edges)
            stats[f"{e.every_split}_mrr"] = res["filtered"]["avg"]["mrr"]
            stats[f"{e.every_split}_hits@10"] = res["filtered"]["avg"].get("hits@10")
        extra = "".join(f", {k} {v:.4f}" for k, v in stats.items() if k.endswith(("_mrr", "@10")) and v)
        log.info("epoch %d/%d: loss %.4f, reg %.4f, %.0f edges/s (%.1fs)%s", stats["epoch"],
                 cfg.training.num_epochs, stats["loss"], stats["reg"], stats["edges_per_second"],
                 stats["wall_seconds"], extra)
        jsonl.write(json.dumps(stats) + "\n")
        jsonl.flush()
        events.epoch(stats)

    buckets_log = open(out / "buckets.jsonl", "a")

    def on_bucket(stats: dict) -> None:
        buckets_log.write(json.dumps(stats) + "\n")
        buckets_log.flush()
        if trainer is not None and trainer.layout.num_partitions > 1:
            log.info("bucket %d/%d (%d,%d): %d edges, %.0f edges/s, train %.2fs, io wait %.2fs, "
                     "io %.1f MB", stats["index"], stats["of"], stats["lhs"], stats["rhs"], stats["edges"],
                     stats["edges_per_second"], stats["train_seconds"], stats["io_wait_seconds"],
                     stats["io_bytes"] / 1e6)

    try:
        trainer = Trainer(cfg, ds, store, on_epoch=on_epoch, on_bucket=on_bucket, cluster=cluster)
        log.info("model: %s %s d=%d%s, loss %s, %d+%d negatives, %s; backend %s",
                 cfg.model.operator, cfg.model.comparator, cfg.model.dimension,
                 " reciprocal" if cfg.model.reciprocal else "", cfg.loss.name,
                 cfg.negatives.num_batch_negs, cfg.negatives.num_uniform_negs,
                 "1 partition" if trainer.layout.num_partitions == 1
                 else f"{trainer.layout.num_partitions} partitions", jax.default_backend())
        n_train = trainer.num_train_edges
        done = trainer.progress["epoch"] * n_train
        with tqdm(total=cfg.training.num_epochs * n_train, initial=done, unit="edge",
                  unit_scale=True, disable=not cfg.training.progress, file=sys.stderr,
                  dynamic_ncols=True, desc="train") as bar:
            t0 = time.perf_counter()
            history = trainer.fit(bar)
            train_seconds = time.perf_counter() - t0
        if not cluster.primary:  # process 0 evaluates and writes the metrics
            log.info("process %d done: %d epochs in %.1fs", cluster.rank, len(history), train_seconds)
            return {"history": history, "train_seconds": train_seconds, "process": cluster.rank}
        calibration = trainer.calibrate()
        if calibration is not None:
            log.info("partition calibration: loss %.4f -> %.4f over %d steps (%.1fs)",
                     calibration["loss_before"], calibration["loss_after"],
                     cfg.training.calibration_steps, calibration["seconds"])
            if cfg.storage.save:
                trainer.commit()
        evaluation: dict[str, Any] = {}
        t0 = time.perf_counter()
        # evaluation ranks against whole entity types: it gathers every partition into memory
        emb, offsets = trainer.full_tables() if cfg.eval.splits else (None, None)
        for split in cfg.eval.splits:
            if split not in ds.splits:
                log.warning("eval: no %s split, skipped", split)
                continue
            full = [p for p in cfg.eval.protocols if p in ("raw", "filtered")]
            res = full_ranking(trainer.model, trainer.state.params, emb, offsets, ds, split,
                               cfg.eval, full, cfg.eval.max_edges) if full else {}
            if "sampled" in cfg.eval.protocols:
                res["sampled"] = sampled_ranking(trainer.model, trainer.state.params, emb, offsets,
                                                 ds, split, cfg.eval, trainer.group_of_rel,
                                                 cfg.eval.max_edges)
            evaluation[split] = res
        eval_seconds = time.perf_counter() - t0
        events.evaluation(evaluation, len(history))
    finally:
        jsonl.close()
        events.close()
        buckets_log.close()
        if trainer is not None:
            trainer.close()
        cluster.shutdown()
    n_cands = max(ds.num_entities(t) for t in ds.entity_types)
    metrics = {
        "experiment": cfg.experiment or cfg.data.name,
        "data": {"name": ds.name, "entities": {t: ds.num_entities(t) for t in ds.entity_types},
                 "relations": ds.num_relations, "edges": {s: len(e) for s, e in ds.splits.items()}},
        "chance_mrr": chance_mrr(n_cands),
        "history": history,
        "eval": evaluation,
        "calibration": calibration,
        "train_seconds": train_seconds,
        "eval_seconds": eval_seconds,
        "total_seconds": time.perf_counter() - t_start,
        "peak_rss_mib": peak_rss_mib(),
        "checkpoint": store.url,
        "processes": cluster.size,
        "config": asdict(cfg),
    }
    with open(out / "metrics.json", "w") as f:
        json.dump(metrics, f, indent=1)
    _print_summary(metrics)
    log.info("run directory: %s", out)
    return metrics


def _print_summary(m: dict[str, Any]) -> None:
    log.info("trained %d epochs in %.1fs; chance-level MRR %.4f", len(m["history"]),
             m["train_seconds"], m["chance_mrr"])
    for split, res in m["eval"].items():
        for proto, r in res.items():
            a = r.get("avg", {})
            if a:
                log.info("%s %s: MRR %.4f  MR %.1f  Hits@1 %.4f  Hits@10 %.4f  AUC %.4f  (%d queries)",
                         split, proto, a["mrr"], a["mr"], a.get("hits@1", 0.0), a.get("hits@10", 0.0),
                         a["auc"], a["count"])


def objective(metrics: dict[str, Any]) -> float:
    """The number a sweeper maximises: validation MRR (filtered, else raw, else sampled)."""
    for split in ("valid", "test"):
        res = metrics.get("eval", {}).get(split, {})
        for proto in ("filtered", "raw", "sampled"):
            if proto in res:
                return float(res[proto]["avg"]["mrr"])
    return float("nan")


register_configs()


def _main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from jgraph.cluster import ClusterError
    from jgraph.data.tsv import DataError
    from jgraph.storage.checkpoint import CheckpointError
    from jgraph.trainer import TrainingDiverged

    @hydra.main(config_path=CONF_DIR, config_name="train", version_base=None)
    def main(cfg) -> float:
        out = HydraConfig.get().runtime.output_dir
        try:
            return objective(run(cfg, out))
        except (DataError, CheckpointError, TrainingDiverged, ClusterError, ValueError, KeyError) as e:
            # a user's mistake or a diverged run: the message says what and where; no traceback
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.error("%s: %s", type(e).__name__, e)
            sys.exit(1)

    main()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _main()
