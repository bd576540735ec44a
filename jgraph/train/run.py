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
from typing import Any, TextIO

from jgraph.assembly import check_names, load_plugins
from jgraph.config import to_config
from jgraph.memory import peak_rss_mib
from jgraph.storage.kv import write_atomic
from jgraph.validation import validate

log = logging.getLogger("jgraph")


def run(cfg: Any, output_dir: str | None = None, given: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Train and evaluate as `cfg` says; returns the metrics dict also written to metrics.json.
    given: the dotted keys the user set (command-line overrides), which `recipe` leaves alone."""
    import jax
    from tqdm import tqdm

    from jgraph.core.metrics import chance_mrr
    from jgraph.data.dataset import load_dataset
    from jgraph.storage.checkpoint import CheckpointStore
    from jgraph.train import evaluation as ev
    from jgraph.train.early_stop import EarlyStopping
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
    ckpt = cfg.storage.checkpoint_dir or (str(out / "checkpoint") if cfg.storage.save else "memory://")
    # locked before the data is read: a second writer fails at once, not after loading a large graph
    store = CheckpointStore(ckpt, writer=cluster.primary)
    try:
        ds = load_dataset(cfg)
    except BaseException:
        store.close()  # lets go of the lock
        raise
    recipe = None
    if cfg.recipe:  # choices from the graph's statistics (jgraph/train/recipe.py)
        from jgraph.assembly import partition_layout
        from jgraph.train.recipe import apply_recipe, graph_stats, kg_recipe

        stats = graph_stats(ds, partition_layout(cfg, ds))
        applied = apply_recipe(cfg, kg_recipe(stats, cfg.training.time_budget_minutes), given)
        validate(cfg)
        recipe = {"name": cfg.recipe, "stats": asdict(stats), "applied": applied,
                  "kept": sorted(given)}
        log.info("recipe %s for %s: %s", cfg.recipe, asdict(stats), " ".join(applied))
    sizes = ", ".join(f"{s} {len(e):,}" for s, e in ds.splits.items())
    ents = ", ".join(f"{t} {ds.num_entities(t):,}" for t in ds.entity_types)
    log.info("data %s: entities %s; %d relations; edges %s", ds.name, ents, ds.num_relations, sizes)
    if cluster.primary and not ckpt.startswith("memory://"):
        from jgraph.mapping import keep_mapping

        try:
            keep_mapping(ckpt, cfg, ds)  # the run keeps its names; a resumed run's data must match them
        except BaseException:
            store.close()  # lets go of the lock
            raise
    jsonl = None  # metrics.jsonl, opened once the trainer knows the committed epochs
    events = EventLog(out / "tensorboard" if cfg.training.tensorboard and cluster.primary else None)
    trainer: Trainer | None = None
    patience = cfg.training.early_stopping_patience
    stopper = EarlyStopping(patience, cfg.training.num_epochs) if patience else None

    def on_epoch(epoch: int, stats: dict) -> None:
        e = cfg.eval
        if e.every_epochs and (epoch + 1) % e.every_epochs == 0 and e.every_split in ds.splits \
                and cluster.primary:
            emb, offsets = trainer.full_tables()
            stats.update(ev.periodic(trainer.model, trainer.state.params, emb, offsets, ds, e))
            if stopper is not None:
                stopper.update(epoch, stats[f"{e.every_split}_mrr"], emb, offsets, trainer.state.params)
        extra = "".join(f", {k} {v:.4f}" for k, v in stats.items() if k.endswith(("_mrr", "@10")) and v)
        log.info("epoch %d/%d: loss %.4f, reg %.4f, %.0f edges/s (%.1fs)%s", stats["epoch"],
                 cfg.training.num_epochs, stats["loss"], stats["reg"], stats["edges_per_second"],
                 stats["wall_seconds"], extra)
        jsonl.write(json.dumps(stats) + "\n")
        jsonl.flush()
        events.epoch(stats)

    def after_epoch(epoch: int) -> bool:  # the epoch is committed: keep the best, maybe stop
        if stopper.best_epoch == epoch and cfg.storage.save:
            store.snapshot("best")
        return stopper.epoch_done(epoch)

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
        trainer = Trainer(cfg, ds, store, on_epoch=on_epoch, on_bucket=on_bucket, cluster=cluster,
                          after_epoch=after_epoch if stopper is not None else None)
        jsonl = _epoch_log(out / "metrics.jsonl", trainer.progress["epoch"])
        log.info("model: %s %s d=%d%s, loss %s, %s negatives, %s; backend %s",
                 cfg.model.operator, cfg.model.comparator, cfg.model.dimension,
                 " reciprocal" if cfg.model.reciprocal else "", cfg.loss.name,
                 "all (1-vs-all)" if trainer.buckets.negatives.all_negs else
                 f"{cfg.negatives.num_batch_negs}+{cfg.negatives.num_uniform_negs}",
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
        restore = stopper is not None and stopper.restores()
        if restore:  # the final evaluation ranks with the best epoch's tables (the calibration
            #         would fit the last epoch's)
            log.info("early stopping: evaluating epoch %d (valid MRR %.4f), the best of %d",
                     stopper.best_epoch + 1, stopper.best_mrr, stopper.last_epoch + 1)
        calibration = None if restore else trainer.calibrate()
        if calibration is not None:
            log.info("partition calibration: loss %.4f -> %.4f over %d steps (%.1fs)",
                     calibration["loss_before"], calibration["loss_after"],
                     cfg.training.calibration_steps, calibration["seconds"])
            if cfg.storage.save:
                trainer.commit()
        t0 = time.perf_counter()
        # evaluation ranks against whole entity types: it gathers every partition into memory
        # (tables larger than memory: skipped here, `jgraph evaluate RUN --protocol sampled` streams)
        too_large = None if restore or not cfg.eval.splits else ev.gather_refused(trainer.layout, cfg)
        if too_large:
            log.warning("final evaluation skipped: %s", too_large)
        if restore:
            emb, offsets, params = stopper.best
        else:
            emb, offsets = trainer.full_tables() if cfg.eval.splits and not too_large else (None, None)
            params = trainer.state.params
        evaluation = {} if too_large else ev.evaluate_splits(trainer.model, params, emb, offsets, ds,
                                                             cfg.eval, trainer.group_of_rel, log)
        eval_seconds = time.perf_counter() - t0
        events.evaluation(evaluation, len(history))
    finally:
        if jsonl is not None:
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
        "degree_baseline_mrr": ev.degree_baselines(evaluation),
        "early_stopping": stopper.summary() if stopper is not None else None,
        "time_budget": trainer.budget_stop,
        "recipe": recipe,
        "negatives_mode": "all" if trainer.buckets.negatives.all_negs else "sampled",
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
    write_atomic(out / "metrics.json", json.dumps(metrics, indent=1))
    log.info("trained %d epochs in %.1fs; chance-level MRR %.4f", len(history), train_seconds,
             metrics["chance_mrr"])
    for line in ev.summary_lines(evaluation, metrics["chance_mrr"]):
        log.info("%s", line)
    log.info("run directory: %s", out)
    return metrics


def _epoch_log(path: Path, committed: int) -> TextIO:
    """metrics.jsonl open to append the epochs this run trains, its lines of epochs after the
    checkpoint's `committed` ones dropped first: an epoch trained but never committed (a failed
    save) is trained again on resume and listed once. (A torn last line goes too.)"""
    kept = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                if json.loads(line)["epoch"] <= committed:
                    kept.append(line + "\n")
            except (ValueError, KeyError, TypeError):
                continue
    write_atomic(path, "".join(kept))
    return open(path, "a")
