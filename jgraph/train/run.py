"""A training job: load the data, train, calibrate, evaluate, and write the run directory's
`metrics.json` (config, per-epoch history, final evaluation), `metrics.jsonl` (one line per epoch),
`buckets.jsonl` and the checkpoint. `python -m jgraph.train` (jgraph.cli.train) is its command line.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from jgraph.assembly import check_names, load_plugins
from jgraph.config import to_config, validate
from jgraph.memory import peak_rss_mib

log = logging.getLogger("jgraph")


def run(cfg: Any, output_dir: str | None = None) -> dict[str, Any]:
    """Train and evaluate as `cfg` says; returns the metrics dict also written to metrics.json."""
    import jax
    from tqdm import tqdm

    from jgraph.core.metrics import chance_mrr
    from jgraph.data.dataset import load_dataset
    from jgraph.ranking import full_ranking, sampled_ranking
    from jgraph.storage.checkpoint import CheckpointStore
    from jgraph.train.events import EventLog
    from jgraph.train.trainer import Trainer

    logging.getLogger("jax").setLevel(logging.WARNING)
    cfg = to_config(cfg)
    validate(cfg)
    load_plugins(cfg.plugins)
    check_names(cfg)
    from jgraph.train.cluster import Cluster

    if cfg.distributed.num_processes > 1 and not cfg.storage.checkpoint_dir:
        raise ValueError("distributed training needs storage.checkpoint_dir on storage every process "
                         "reaches (or use python -m jgraph.cli.launch, which sets one)")
    cluster = Cluster(cfg.distributed)  # before anything touches the JAX backend
    out = Path(output_dir or tempfile.mkdtemp(prefix="jgraph-run-"))
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    ds = load_dataset(cfg)
    sizes = ", ".join(f"{s} {len(e):,}" for s, e in ds.splits.items())
    ents = ", ".join(f"{t} {ds.num_entities(t):,}" for t in ds.entity_types)
    log.info("data %s: entities %s; %d relations; edges %s", ds.name, ents, ds.num_relations, sizes)
    ckpt = cfg.storage.checkpoint_dir or (str(out / "checkpoint") if cfg.storage.save else "memory://")
    store = CheckpointStore(ckpt, writer=cluster.primary)  # locks it; fails at once if in use
    if cluster.primary and not ckpt.startswith("memory://"):
        from jgraph.mapping import keep_mapping

        try:
            keep_mapping(ckpt, cfg, ds)  # the run keeps its names; a resumed run's data must match them
        except BaseException:
            store.close()  # lets go of the lock
            raise
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
        else:
            store.close()  # lets go of its lock
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
