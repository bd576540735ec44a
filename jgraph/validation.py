"""Checks across config fields that the typed schema (jgraph/config.py) cannot express.

`validate` raises a one-line ConfigError naming the key; `chunk_size` is the positives per chunk the
checks and the step agree on. This module imports no jax.
"""

from __future__ import annotations

from jgraph.config import TrainConfig
from jgraph.errors import ConfigError


def validate(cfg: TrainConfig) -> None:
    """Checks across fields that a schema cannot express; raises ValueError naming the key."""
    m, n, t = cfg.model, cfg.negatives, cfg.training
    o = cfg.optimizer
    if o.schedule not in ("constant", "linear", "cosine"):
        raise ConfigError(f"optimizer.schedule must be constant, linear or cosine, got {o.schedule!r}")
    if o.warmup_steps < 0 or (o.decay_steps is not None and o.decay_steps < 0):
        raise ConfigError("optimizer.warmup_steps and decay_steps must be >= 0")
    if m.dimension <= 0:
        raise ConfigError(f"model.dimension must be > 0, got {m.dimension}")
    if cfg.storage.buffer_partitions < 2 or cfg.storage.buffer_memory_gb < 0:
        raise ConfigError("storage.buffer_partitions must be >= 2 and storage.buffer_memory_gb >= 0, "
                          f"got {cfg.storage.buffer_partitions} and {cfg.storage.buffer_memory_gb}")
    if m.bias and m.dimension < 2:
        raise ConfigError("model.bias needs model.dimension >= 2")
    if m.embedding_dtype not in ("float32", "bfloat16"):
        raise ConfigError(f"model.embedding_dtype must be float32 or bfloat16, got {m.embedding_dtype!r}")
    if m.compute_dtype not in ("float32", "bfloat16"):
        raise ConfigError(f"model.compute_dtype must be float32 or bfloat16, got {m.compute_dtype!r}")
    if not 0.0 <= n.degree_fraction <= 1.0:
        raise ConfigError(f"negatives.degree_fraction must be in [0, 1], got {n.degree_fraction}")
    if n.num_batch_negs < 0 or n.num_uniform_negs < 0:
        raise ConfigError("negatives.num_batch_negs and num_uniform_negs must be >= 0")
    if n.mode not in ("sampled", "all", "auto"):
        raise ConfigError(f"negatives.mode must be sampled, all or auto, got {n.mode!r}")
    if n.mode != "all" and not n.all_negs and n.num_batch_negs == 0 and n.num_uniform_negs == 0:
        raise ConfigError("negatives: num_batch_negs and num_uniform_negs are both 0 (or set "
                          "negatives.mode=all)")
    if not n.self_weight > 0:
        raise ConfigError(f"negatives.self_weight must be > 0, got {n.self_weight}")
    if cfg.recipe not in ("", "kg"):
        raise ConfigError(f"recipe must be kg or empty, got {cfg.recipe!r}")
    if t.time_budget_minutes < 0:
        raise ConfigError(f"training.time_budget_minutes must be >= 0, got {t.time_budget_minutes}")
    if n.logq_correction and cfg.loss.name != "softmax":
        raise ConfigError(f"negatives.logq_correction corrects a softmax's sampled negatives; "
                          f"loss.name is {cfg.loss.name!r} (use loss=softmax)")
    if n.uniform_from not in ("side", "bucket"):
        raise ConfigError(f"negatives.uniform_from must be side or bucket, got {n.uniform_from!r}")
    if n.disable_lhs_negs and n.disable_rhs_negs:
        raise ConfigError("negatives.disable_lhs_negs and disable_rhs_negs cannot both be true")
    chunk = chunk_size(cfg)
    if t.batch_size <= 0 or t.batch_size % chunk:
        raise ConfigError(
            f"training.batch_size ({t.batch_size}) must be a positive multiple of the chunk size "
            f"({chunk} = negatives.num_batch_negs, or num_uniform_negs when that is 0)"
        )
    if t.batches_per_dispatch <= 0:
        raise ConfigError("training.batches_per_dispatch must be > 0")
    if t.num_epochs < 0:
        raise ConfigError(f"training.num_epochs must be >= 0, got {t.num_epochs}")
    if t.divergence_factor < 0 or 0 < t.divergence_factor <= 1:
        raise ConfigError(f"training.divergence_factor must be > 1 (or 0: off), got {t.divergence_factor}")
    o = cfg.optimizer
    if not o.lr > 0 or (o.relation_lr is not None and not o.relation_lr > 0):
        raise ConfigError(f"optimizer.lr and relation_lr must be > 0, got {o.lr} and {o.relation_lr}")
    bad_hits = [k for k in cfg.eval.hits if k < 1]
    if bad_hits:
        raise ConfigError(f"eval.hits must be ranks >= 1, got {bad_hits}")
    if t.row_update not in ("auto", "sparse", "dense"):
        raise ConfigError(f"training.row_update must be auto, sparse or dense, got {t.row_update!r}")
    if t.early_stopping_patience < 0:
        raise ConfigError(f"training.early_stopping_patience must be >= 0, got {t.early_stopping_patience}")
    if t.early_stopping_patience and not cfg.eval.every_epochs:
        raise ConfigError("training.early_stopping_patience needs eval.every_epochs > 0 (it watches the "
                          "periodic validation MRR)")
    if t.early_stopping_patience and cfg.distributed.num_processes > 1:
        raise ConfigError("training.early_stopping_patience: not with distributed training (process 0 "
                          "alone evaluates)")
    if cfg.eval.ties not in ("realistic", "pessimistic", "optimistic"):
        raise ConfigError(f"eval.ties must be realistic, pessimistic or optimistic, got {cfg.eval.ties!r}")
    for p in cfg.eval.protocols:
        if p not in ("raw", "filtered", "sampled"):
            raise ConfigError(f"eval.protocols: unknown protocol {p!r} (raw, filtered, sampled)")
    if t.rng_impl not in ("threefry", "rbg", "unsafe_rbg"):
        raise ConfigError(f"training.rng_impl must be threefry, rbg or unsafe_rbg, got {t.rng_impl!r}")
    if not cfg.entities:
        raise ConfigError("entities: at least one entity type is needed")
    for name, ent in cfg.entities.items():
        if ent.num_partitions < 1:
            raise ConfigError(f"entities.{name}.num_partitions must be >= 1")
    for rel in cfg.relations:
        for side in (rel.lhs, rel.rhs):
            if side not in cfg.entities:
                raise ConfigError(
                    f"relations: {rel.name!r} uses entity type {side!r}, not in entities "
                    f"({', '.join(cfg.entities)})"
                )
        if rel.weight <= 0:
            raise ConfigError(f"relations: {rel.name!r} weight must be > 0")


def chunk_size(cfg: TrainConfig) -> int:
    """Positives per chunk: num_batch_negs, or num_uniform_negs when there are no batch negatives."""
    n = cfg.negatives
    if n.num_batch_negs > 0:
        return min(n.num_batch_negs, cfg.training.batch_size)
    return max(1, min(n.num_uniform_negs, cfg.training.batch_size))
