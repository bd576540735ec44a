"""Assembling a run's pieces from its config and data: the model, partition layout, negative
spec, chunk groups, the fingerprint a checkpoint must match, and the train state as named arrays.
Shared by training and by every tool that opens a trained run."""

from __future__ import annotations

import importlib
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.config import TrainConfig
from jgraph.core.model import Model, ModelSpec
from jgraph.core.negatives import entity_degrees
from jgraph.core.optim import Schedule
from jgraph.core.step import NegativeSpec, TrainState
from jgraph.data.dataset import Dataset
from jgraph.data.features import entity_config, model_extras
from jgraph.memory import IN_FLIGHT, buffer_for_budget, partition_bytes
from jgraph.plan.partition import PartitionLayout


def load_plugins(names: list[str]) -> None:
    """Import the modules that register scorers (config key `plugins`)."""
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as e:
            from jgraph.errors import ConfigError

            raise ConfigError(f"plugins: cannot import {name!r}: {e}") from e


# plugins a checkpoint may name without the user's say-so: the installed package's own
INSTALLED_PLUGINS = ("models",)


def trusted_plugins(listed: list[str], allowed: list[str] | tuple[str, ...] = ()) -> list[str]:
    """The plugins a tool opening a run imports: those `listed` in its checkpoint that are the
    installed package's own or `allowed` by the user (--allow-plugin / allow_plugins=); opening a
    run someone sent must not run code it names. A listed plugin left out is one warning."""
    ok = set(INSTALLED_PLUGINS) | set(allowed)
    skipped = [n for n in listed if n not in ok]
    if skipped:
        import logging

        logging.getLogger("jgraph").warning(
            "not importing plugin(s) %s named by the checkpoint: allow them with --allow-plugin NAME",
            ", ".join(map(repr, skipped)))
    return [n for n in listed if n in ok] + [n for n in allowed if n not in listed]


def check_names(cfg: TrainConfig) -> None:
    """Every scorer the config names is registered (checked before any data is read)."""
    from jgraph.core.scorer import COMPARATORS, OPERATORS, REGULARIZERS, loss_function

    OPERATORS.get(cfg.model.operator)
    for r in cfg.relations:
        if r.operator:
            OPERATORS.get(r.operator)
    COMPARATORS.get(cfg.model.comparator)
    loss_function(cfg.loss.name, cfg.loss.adversarial_temperature)  # (with a self-adversarial form)
    if cfg.model.regularization_coef:
        REGULARIZERS.get(cfg.model.regularizer)


def build_model(cfg: TrainConfig, ds: Dataset) -> Model:
    """The run's scorer: each relation's operator and weight from `relations` (or the model's)."""
    listed = {r.name: r for r in cfg.relations}
    weights = [listed[n].weight if n in listed else 1.0 for n in ds.relation_names]
    m = cfg.model
    return Model(ModelSpec(
        dimension=m.dimension, operator_of_relation=_relation_operators(cfg, ds),
        relation_types=ds.relation_types, relation_weight=np.array(weights, np.float32),
        num_types=len(ds.entity_types), comparator=m.comparator, bias=m.bias, loss=cfg.loss.name,
        margin=cfg.loss.margin, regularizer=m.regularizer, regularization_coef=m.regularization_coef,
        reciprocal=m.reciprocal, global_emb=m.global_emb, max_norm=m.max_norm,
        compute_dtype=m.compute_dtype, adversarial_temperature=cfg.loss.adversarial_temperature,
        **model_extras(cfg, ds),  # featurized and frozen types (jgraph/data/features.py)
    ))


def training_degrees(cfg: TrainConfig, ds: Dataset) -> list[np.ndarray] | None:
    """negatives.degree_fraction and logq_correction: every entity's training degree, per type
    (None when both are off)."""
    n = cfg.negatives
    if not (n.degree_fraction or n.logq_correction) or n.all_negs:
        return None
    if "train" not in ds.splits:
        key = "degree_fraction" if n.degree_fraction else "logq_correction"
        raise ValueError(f"negatives.{key} needs the training edges in memory (not a "
                         "prepared dataset)")
    tr = ds.splits["train"]
    return entity_degrees(tr.lhs, tr.rhs, tr.rel, ds.relation_types,
                          [ds.num_entities(t) for t in ds.entity_types])


def lr_schedule(cfg: TrainConfig, num_train_edges: int) -> Schedule:
    """optimizer.schedule over the run's batches: decay_steps, when not given, is the whole run
    (training.num_epochs x the batches of an epoch of `num_train_edges`)."""
    o, t = cfg.optimizer, cfg.training
    total = t.num_epochs * -(-num_train_edges // t.batch_size)
    return Schedule(o.schedule, o.warmup_steps, total if o.decay_steps is None else o.decay_steps,
                    o.final_lr_ratio)


ALL_NEGATIVES_MAX_ROWS = 50_000  # negatives.mode=auto: 1-vs-all up to this many working-table rows


def negatives_mode(mode: str, all_negs: bool, num_rows: int, num_partitions: int,
                   max_rows: int = ALL_NEGATIVES_MAX_ROWS) -> str:
    """negatives.mode resolved to "all" or "sampled" for a working table of `num_rows` rows (K,
    every resident partition) and `num_partitions` partitions: auto is 1-vs-all on one partition
    of at most `max_rows` rows (a batch then scores B x K, e.g. 1000 x 50,000 floats = 200 MB, and
    costs K / (negatives per positive) times a sampled one), sampled on larger or partitioned
    graphs; PBG's all_negs is all."""
    if mode == "all" or all_negs:
        return "all"
    if mode == "auto" and num_partitions == 1 and num_rows <= max_rows:
        return "all"
    return "sampled"


def negative_spec(cfg: TrainConfig, num_batch: int | None = None, num_uniform: int | None = None,
                  layout: PartitionLayout | None = None) -> NegativeSpec:
    """The training step's negatives; `layout` (the run's partitions) resolves negatives.mode=auto
    (without it auto is sampled)."""
    n = cfg.negatives
    nb = n.num_batch_negs if num_batch is None else num_batch
    nu = n.num_uniform_negs if num_uniform is None else num_uniform
    rows, parts = (layout.num_rows, layout.num_partitions) if layout is not None else (1 << 62, 1)
    every = negatives_mode(n.mode, n.all_negs, rows, parts) == "all"
    return NegativeSpec(num_uniform=nu, use_batch=nb > 0, all_negs=every,
                        sides=(not n.disable_lhs_negs, not n.disable_rhs_negs),
                        both_partitions=n.uniform_from == "bucket", self_negative=n.self_negative,
                        num_degree=round(nu * n.degree_fraction), self_weight=n.self_weight,
                        self_warmup=n.self_weight_warmup,
                        logq=n.logq_correction and not every)


def relation_groups(cfg: TrainConfig, ds: Dataset) -> np.ndarray | None:
    """The chunk group of each relation (edges of different groups never share a chunk): the
    relation itself in standard mode (its operator is applied to the chunk's negatives), the
    (lhs type, rhs type) pair with reciprocal relations; None when every edge may mix."""
    rt = ds.relation_types
    if not cfg.model.reciprocal:
        group = np.arange(len(rt))
    elif len(ds.entity_types) > 1:
        group = rt[:, 0] * len(ds.entity_types) + rt[:, 1]
    else:
        return None
    if np.unique(group).size <= 1:
        return None  # one group: no per-edge group array to build and sort
    return group.astype(np.int16) if group.max() < 2**15 else group  # int16: a radix sort per bucket


def compute_groups(cfg: TrainConfig) -> int:
    """training.compute_groups, with 0 = as many groups as CPU cores (1 on an accelerator)."""
    if cfg.training.compute_groups > 0:
        return cfg.training.compute_groups
    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def partition_layout(cfg: TrainConfig, ds: Dataset) -> PartitionLayout:
    """Entity partitions of a run (a prepared dataset fixes its own partitions and seed)."""
    counts = {t: ds.num_entities(t) for t in ds.entity_types}
    parts = {t: entity_config(cfg, t).num_partitions for t in ds.entity_types}
    seed = ds.partition_seed if ds.partition_seed is not None else cfg.training.seed
    layout = PartitionLayout.build(counts, parts, seed)
    return PartitionLayout(layout.types, buffer_partitions(cfg, layout))


def buffer_partitions(cfg: TrainConfig, layout: PartitionLayout) -> int:
    """B, the slots of each partitioned type: storage.buffer_partitions, or the most that
    storage.buffer_memory_gb holds with the in-flight copies (memory.buffer_for_budget)."""
    s = cfg.storage
    parted = [tp for tp in layout.types if tp.num_partitions > 1]
    if not s.buffer_memory_gb or not parted:
        return s.buffer_partitions
    itemsize = jnp.dtype(cfg.model.embedding_dtype).itemsize
    sizes = [partition_bytes(tp.capacity, cfg.model.dimension, itemsize) for tp in parted]
    in_flight = IN_FLIGHT if s.prefetch_partitions else 0
    return buffer_for_budget(s.buffer_memory_gb * 2**30, sum(a for a, _ in sizes),
                             max(c for _, c in sizes), layout.num_partitions, in_flight)


def fingerprint(cfg: TrainConfig, ds: Dataset) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed or opened: the data's shape, the partitions,
    the seed and every setting that changes scores or the objective (see fingerprint_mismatch)."""
    m = cfg.model
    return {
        "dimension": m.dimension, "operator": m.operator,
        "reciprocal": m.reciprocal, "global_emb": m.global_emb,
        "entities": {t: [ds.num_entities(t), entity_config(cfg, t).num_partitions]
                     for t in ds.entity_types},
        "relations": len(ds.relation_names), "seed": cfg.training.seed,
        "operators": _relation_operators(cfg, ds), "comparator": m.comparator, "bias": m.bias,
        "max_norm": m.max_norm, "loss": cfg.loss.name, "margin": cfg.loss.margin,
        "adversarial_temperature": cfg.loss.adversarial_temperature,
    }


def fingerprint_mismatch(stored: dict[str, Any] | None, want: dict[str, Any]) -> str:
    """The settings where a checkpoint's fingerprint and this run's differ ("" when they agree),
    e.g. "comparator: dot in the checkpoint, cos here". A key the stored fingerprint lacks (a
    checkpoint from before it was recorded) is not compared."""
    if stored is None:
        return "the checkpoint records no fingerprint"
    return "; ".join(f"{k}: {stored[k]!r} in the checkpoint, {v!r} here"
                     for k, v in want.items() if k in stored and stored[k] != v)


def _relation_operators(cfg: TrainConfig, ds: Dataset) -> list[str]:
    """The operator of each relation id: its `relations` entry's, or model.operator."""
    listed = {r.name: r for r in cfg.relations}
    return [(listed[n].operator if n in listed and listed[n].operator else cfg.model.operator)
            for n in ds.relation_names]


def state_arrays(state: TrainState) -> dict[str, np.ndarray]:
    leaves = jax.tree_util.tree_flatten_with_path((state.params, state.opt_state))[0]
    out = {f"tree{jax.tree_util.keystr(p)}": np.asarray(v) for p, v in leaves}
    out["step"] = np.asarray(state.step)
    out["key"] = np.asarray(jax.random.key_data(state.key))
    return out


def state_from_arrays(template: TrainState, arrays: dict[str, np.ndarray]) -> TrainState:
    paths, treedef = jax.tree_util.tree_flatten_with_path((template.params, template.opt_state))
    leaves = []
    for p, v in paths:
        name = f"tree{jax.tree_util.keystr(p)}"
        if name not in arrays or arrays[name].shape != v.shape:
            raise ValueError(f"checkpoint parameters do not match this model ({name})")
        leaves.append(jnp.asarray(arrays[name]))
    params, opt_state = jax.tree_util.tree_unflatten(treedef, leaves)
    impl = jax.random.key_impl(template.key)
    key = jax.random.wrap_key_data(jnp.asarray(arrays["key"]), impl=impl)
    return TrainState(jnp.asarray(arrays["step"]), key, params, opt_state)
