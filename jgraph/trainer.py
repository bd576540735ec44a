"""The training loop: epochs of buckets, partitions swapped through the checkpoint store.

For each bucket of the order: evicted partitions are written back in the background, the bucket's
partitions are put into their working-table slots (their reads were started while the previous
bucket trained, as were its edge batches), the jitted block step runs over the bucket's batches,
and a checkpoint is committed every `storage.checkpoint_every_buckets` buckets and at every
epoch's end. A resumed run continues after the last committed bucket.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.buckets import BucketedEdges, bucket_order, bucketize
from jgraph.chunk import Batches, make_batches
from jgraph.config import TrainConfig, chunk_size
from jgraph.data.dataset import Dataset
from jgraph.model import Batch, Layout, Model
from jgraph.partition import PartitionLayout
from jgraph.residency import Step, plan
from jgraph.step import NegativeSpec, Tables, TrainState, init_state, make_slot_ops, make_train_block
from jgraph.storage.checkpoint import CheckpointStore

log = logging.getLogger("jgraph")


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite; the last committed checkpoint is left as it was."""


def build_model(cfg: TrainConfig, ds: Dataset) -> Model:
    listed = {r.name: r for r in cfg.relations}
    ops = [(listed[n].operator if n in listed and listed[n].operator else cfg.model.operator)
           for n in ds.relation_names]
    weights = [listed[n].weight if n in listed else 1.0 for n in ds.relation_names]
    m = cfg.model
    return Model(
        dimension=m.dimension, operator_of_relation=ops, relation_types=ds.relation_types,
        relation_weight=np.array(weights, np.float32), num_types=len(ds.entity_types),
        comparator=m.comparator, bias=m.bias, loss=cfg.loss.name, margin=cfg.loss.margin,
        regularizer=m.regularizer, regularization_coef=m.regularization_coef,
        reciprocal=m.reciprocal, global_emb=m.global_emb, max_norm=m.max_norm,
        init_scale=m.init_scale,
    )


def negative_spec(cfg: TrainConfig, num_batch: int | None = None, num_uniform: int | None = None
                  ) -> NegativeSpec:
    n = cfg.negatives
    nb = n.num_batch_negs if num_batch is None else num_batch
    nu = n.num_uniform_negs if num_uniform is None else num_uniform
    return NegativeSpec(num_uniform=nu, use_batch=nb > 0, all_negs=n.all_negs,
                        sides=(not n.disable_lhs_negs, not n.disable_rhs_negs))


def chunk_groups(cfg: TrainConfig, ds: Dataset) -> np.ndarray | None:
    """The chunk group of each relation (edges of different groups never share a chunk): the
    relation itself in standard mode (its operator is applied to the chunk's negatives), the
    (lhs type, rhs type) pair with reciprocal relations; None when every edge may mix."""
    rt = ds.relation_types
    if not cfg.model.reciprocal:
        return np.arange(len(rt))
    if len(ds.entity_types) > 1:
        return rt[:, 0] * len(ds.entity_types) + rt[:, 1]
    return None


def compute_groups(cfg: TrainConfig) -> int:
    """training.compute_groups, with 0 = as many groups as CPU cores (1 on an accelerator)."""
    if cfg.training.compute_groups > 0:
        return cfg.training.compute_groups
    if jax.default_backend() != "cpu":
        return 1
    return max(1, min(len(os.sched_getaffinity(0)), 8))


def fingerprint(cfg: TrainConfig, ds: Dataset) -> dict[str, Any]:
    """What a checkpoint must agree on to be resumed."""
    return {
        "dimension": cfg.model.dimension, "operator": cfg.model.operator,
        "reciprocal": cfg.model.reciprocal, "global_emb": cfg.model.global_emb,
        "entities": {t: [ds.num_entities(t), cfg.entities[t].num_partitions] for t in ds.entity_types},
        "relations": len(ds.relation_names), "seed": cfg.training.seed,
    }


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


class Trainer:
    """Trains one run's tables bucket by bucket; see the module docstring."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, store: CheckpointStore,
                 on_epoch: Callable[[int, dict], None] | None = None) -> None:
        self.cfg, self.ds, self.store, self.on_epoch = cfg, ds, store, on_epoch
        self.model = build_model(cfg, ds)
        counts = {t: ds.num_entities(t) for t in ds.entity_types}
        parts = {t: cfg.entities[t].num_partitions for t in ds.entity_types}
        self.layout = PartitionLayout.build(counts, parts, cfg.training.seed)
        tr = ds.splits["train"]
        types = self.layout.types
        self.edges: BucketedEdges = bucketize(
            tr.lhs, tr.rhs, tr.rel, tr.weight, ds.relation_types,
            [t.part_of for t in types], [t.offset_of for t in types],
            [t.num_partitions for t in types],
        )
        t = cfg.training
        self.chunk = chunk_size(cfg)
        self.chunks_per_batch = t.batch_size // self.chunk
        self.neg = negative_spec(cfg)
        relation_lr = cfg.optimizer.relation_lr or cfg.optimizer.lr
        k, d = self.layout.num_rows, cfg.model.dimension
        self.train_block = make_train_block(self.model, self.neg, cfg.optimizer.lr, relation_lr,
                                            cfg.optimizer.eps, k, compute_groups(cfg))
        self.put_slot, self.init_slot, self.get_slot = make_slot_ops(cfg.model.init_scale)
        self.state = init_state(self.model, t.seed, t.rng_impl, relation_lr, cfg.optimizer.eps)
        self.tables = Tables(jnp.zeros((k, d), jnp.float32), jnp.zeros((k,), jnp.float32))
        self.resident: dict[tuple[int, int], int] = {}  # (type, slot) -> partition
        self.progress = {"epoch": 0, "bucket": 0}
        self.history: list[dict[str, Any]] = []
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="jgraph-batches")
        self._since_commit = 0
        self.group_of_rel = chunk_groups(cfg, ds)
        self._restore()

    # ------------------------------------------------------------------ checkpoints
    def _restore(self) -> None:
        if not self.store.exists():
            return
        m = self.store.manifest
        want = fingerprint(self.cfg, self.ds)
        if m.get("fingerprint") != want:
            raise ValueError(
                f"checkpoint {self.store.url} belongs to another model/data "
                f"({m.get('fingerprint')} != {want}); use a fresh storage.checkpoint_dir"
            )
        self.state = state_from_arrays(self.state, self.store.read_params())
        self.progress = dict(m["progress"])
        self.history = list(m.get("history", []))
        log.info("resuming from %s version %d: epoch %d, bucket %d", self.store.url,
                 self.store.version, self.progress["epoch"], self.progress["bucket"])

    def commit(self, epoch: int, bucket: int) -> None:
        """Write every resident partition and the parameters, then switch the manifest."""
        for (t, slot), part in self.resident.items():
            self._write_slot(t, part, slot)
        self.store.write_params(state_arrays(self.state))
        self.store.commit(
            {"epoch": epoch, "bucket": bucket},
            {"fingerprint": fingerprint(self.cfg, self.ds), "history": self.history,
             "config": asdict(self.cfg)},
        )
        self._since_commit = 0

    def _write_slot(self, t: int, part: int, slot: int) -> None:
        tp = self.layout.types[t]
        emb, acc = self.get_slot(self.tables, self.layout.slot_start[t][slot], rows=tp.capacity)
        self.store.write_partition(tp.name, part, np.asarray(emb), np.asarray(acc))

    # ------------------------------------------------------------------ swapping
    def _enter(self, step: Step, reads: dict[tuple[int, int], Future]) -> None:
        for t, part, slot in step.evict:
            self._write_slot(t, part, slot)
            del self.resident[(t, slot)]
        for t, part, slot in step.load:
            tp = self.layout.types[t]
            fut = reads.pop((t, part), None) or self.store.read_partition(tp.name, part)
            data = fut.result()
            start = self.layout.slot_start[t][slot]
            if data is None:  # first touch: N(0, init_scale^2), as PBG
                key = jax.random.key(hash((self.cfg.training.seed, t, part)) % (2**31))
                self.tables = self.init_slot(self.tables, start, key, rows=tp.capacity)
            else:
                self.tables = self.put_slot(self.tables, start, data[0], data[1])
            self.resident[(t, slot)] = part

    def _batches(self, step: Step, epoch: int) -> tuple[Batches, Layout]:
        layout = self.layout.layout(step.bucket, step.slot_of)
        lhs_off, rhs_off, rel, w = self.edges.edges(step.bucket)
        rt = self.ds.relation_types[rel]
        lhs = layout.lo[rt[:, 0], 0] + lhs_off
        rhs = layout.lo[rt[:, 1], 1] + rhs_off
        group = None if self.group_of_rel is None else self.group_of_rel[rel]
        rng = np.random.default_rng([self.cfg.training.seed, epoch, *step.bucket])
        b = make_batches(lhs, rhs, rel, w, group, self.chunk, self.chunks_per_batch,
                         self.cfg.training.batches_per_dispatch, rng)
        return b, Layout(jnp.asarray(layout.lo), jnp.asarray(layout.n))

    # ------------------------------------------------------------------ training
    def fit(self, progress_bar=None) -> list[dict[str, Any]]:
        """Train the remaining epochs; returns the per-epoch history."""
        cfg = self.cfg
        while self.progress["epoch"] < cfg.training.num_epochs:
            epoch = self.progress["epoch"]
            stats = self.train_epoch(epoch, self.progress["bucket"], progress_bar)
            self.history.append(stats)
            if self.on_epoch is not None:
                self.on_epoch(epoch, stats)
            self.progress = {"epoch": epoch + 1, "bucket": 0}
            if cfg.storage.save:
                self.commit(epoch + 1, 0)
                every = cfg.storage.checkpoint_preservation_interval
                if every and (epoch + 1) % every == 0:
                    self.store.snapshot(f"epoch_{epoch + 1}")
        return self.history

    def train_epoch(self, epoch: int, first: int, bar=None) -> dict[str, Any]:
        cfg = self.cfg
        order = bucket_order(self.edges.n_lhs, self.edges.n_rhs, cfg.storage.bucket_order,
                             cfg.training.seed, epoch)
        steps, _ = plan(self.layout, order[first:], self.resident)
        totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}
        io_wait = train_time = 0.0
        bytes0 = self.store.bytes_read + self.store.bytes_written
        t_epoch = time.perf_counter()
        reads: dict[tuple[int, int], Future] = {}
        next_batches = self._pool.submit(self._batches, steps[0], epoch) if steps else None
        for k, step in enumerate(steps):
            t0 = time.perf_counter()
            self._enter(step, reads)
            batches, layout = next_batches.result()
            io_wait += time.perf_counter() - t0
            if k + 1 < len(steps):  # overlap the next bucket's reads and batching with training
                for t, part, _ in steps[k + 1].load:
                    reads[(t, part)] = self.store.read_partition(self.layout.types[t].name, part)
                next_batches = self._pool.submit(self._batches, steps[k + 1], epoch)
            t1 = time.perf_counter()
            stats = self._train_bucket(batches, layout, bar, epoch, step.bucket)
            dt = time.perf_counter() - t1
            train_time += dt
            for key in totals:
                totals[key] += stats[key]
            if self.layout.num_partitions > 1:
                log.debug("bucket %s: %d edges, train %.2fs (%.0f edges/s), io wait %.2fs",
                          step.bucket, stats["count"], dt, stats["count"] / max(dt, 1e-9),
                          time.perf_counter() - t0 - dt)
            self._since_commit += 1
            done = first + k + 1
            every = cfg.storage.checkpoint_every_buckets
            if cfg.storage.save and every and self._since_commit >= every and done < len(order):
                self.progress = {"epoch": epoch, "bucket": done}
                self.commit(epoch, done)
        wall = time.perf_counter() - t_epoch
        n = max(totals["count"], 1.0)
        return {
            "epoch": epoch + 1, "loss": totals["loss"] / n, "reg": totals["reg"] / n,
            "edges": int(totals["count"]), "train_seconds": train_time, "wall_seconds": wall,
            "edges_per_second": totals["count"] / max(wall, 1e-9), "io_wait_seconds": io_wait,
            "io_bytes": self.store.bytes_read + self.store.bytes_written - bytes0,
        }

    def _train_bucket(self, batches: Batches, layout: Layout, bar, epoch: int, bucket) -> dict:
        s = self.cfg.training.batches_per_dispatch
        every = max(1, self.cfg.training.log_every_dispatches)
        pending: list[dict] = []
        totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}

        def pull() -> None:
            for st in jax.device_get(pending):
                if st["nonfinite"] > 0:
                    raise TrainingDiverged(
                        f"non-finite loss in epoch {epoch + 1}, bucket {bucket}; stopped without "
                        f"saving (the last committed checkpoint, version {self.store.version}, is "
                        f"kept). Lower optimizer.lr or check the data weights."
                    )
                for key in totals:
                    totals[key] += float(st[key])
                if bar is not None:
                    bar.update(int(st["count"]))
            pending.clear()

        for i in range(batches.num_blocks(s)):
            arrays, n = batches.block(i, s)
            block = Batch(*(jnp.asarray(a) for a in arrays))
            self.state, self.tables, stats = self.train_block(
                self.state, self.tables, block, jnp.int32(n), layout)
            pending.append(stats)
            if len(pending) >= every:
                pull()
        pull()
        return totals

    # ------------------------------------------------------------------ results
    def full_tables(self) -> tuple[jax.Array, np.ndarray]:
        """Every entity's row in id order: (emb [sum of counts, D], start row of each type [T])."""
        parts, offsets, off = [], [], 0
        for t, tp in enumerate(self.layout.types):
            offsets.append(off)
            off += tp.count
            if tp.num_partitions == 1:
                start = self.layout.slot_start[t][0]
                parts.append(self.tables.emb[start : start + tp.count])
                continue
            full = np.zeros((tp.count, self.cfg.model.dimension), np.float32)
            here = {p: s for (tt, s), p in self.resident.items() if tt == t}
            for p in range(tp.num_partitions):
                if p in here:
                    start = self.layout.slot_start[t][here[p]]
                    rows = np.asarray(self.tables.emb[start : start + tp.sizes[p]])
                else:
                    data = self.store.read_partition(tp.name, p).result()
                    rows = data[0][: tp.sizes[p]] if data is not None else 0.0
                full[tp.members[p]] = rows
            parts.append(jnp.asarray(full))
        return jnp.concatenate(parts) if len(parts) > 1 else parts[0], np.array(offsets, np.int64)

    def close(self) -> None:
        self._pool.shutdown(wait=True)
        self.store.close()
