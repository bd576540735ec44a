"""One bucket's training: its edges (bucketed in memory or in TensorStore) as batches of chunks,
and the jitted block step run over them, S batches per dispatch.

Shapes: S batches per dispatch, C chunks per batch, P positives per chunk, K working-table rows.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import Future

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.assembly import compute_groups, lr_schedule, negative_spec, relation_groups, training_degrees
from jgraph.config import TrainConfig
from jgraph.core.model import Batch, Layout, Model
from jgraph.core.negatives import degree_table
from jgraph.core.step import Tables, TrainState, make_train_block
from jgraph.data.dataset import Dataset
from jgraph.errors import TrainingDiverged
from jgraph.plan.batches import Batches, block_workers, make_batches
from jgraph.plan.buckets import BucketedEdges, bucketize
from jgraph.plan.partition import PartitionLayout
from jgraph.plan.residency import Swap
from jgraph.storage.edges import EdgeBucketStore, write_buckets
from jgraph.train.featurized import feature_rows
from jgraph.train.guard import ADVICE
from jgraph.validation import chunk_size


def training_edges(cfg: TrainConfig, ds: Dataset, layout: PartitionLayout
                   ) -> BucketedEdges | EdgeBucketStore:
    """The training edges by bucket: a prepared dataset's in TensorStore, else bucketed in
    memory (or in TensorStore at storage.edge_dir, written on first use, so edges need no memory);
    with data.walks.per_node, the pairs of random walks on the train graph (data/walks.py)."""
    if cfg.data.walks.per_node:
        from jgraph.data.walks import walk_edges

        return walk_edges(cfg.data.walks, ds, layout, cfg.storage.edge_dir)
    if ds.train_buckets is not None:
        return EdgeBucketStore(ds.train_buckets)
    tr = ds.splits["train"]
    types = layout.types
    edges = bucketize(tr.lhs, tr.rhs, tr.rel, tr.weight, ds.relation_types,
                      [t.part_of for t in types], [t.offset_of for t in types],
                      [t.num_partitions for t in types])
    location = cfg.storage.edge_dir
    if not location:
        return edges
    try:
        store = EdgeBucketStore(location)
    except FileNotFoundError:
        write_buckets(location, edges)
        store = EdgeBucketStore(location)
    want = [edges.count((i, j)) for i in range(edges.n_lhs) for j in range(edges.n_rhs)]
    if store.meta["counts"] != want:
        raise ValueError(f"storage.edge_dir {location}: holds other edges (bucket counts differ)")
    return store


class BucketTrainer:
    """The compiled block step (`train_block`) and what feeds it."""

    def __init__(self, cfg: TrainConfig, ds: Dataset, layout: PartitionLayout, model: Model,
                 num_train_edges: int = 0) -> None:
        self.cfg, self.ds, self.layout = cfg, ds, layout
        self.chunk = chunk_size(cfg)
        self.chunks_per_batch = cfg.training.batch_size // self.chunk
        o = cfg.optimizer
        self.negatives = negative_spec(cfg, layout=layout)  # negatives.mode=auto resolved by size
        self.train_block = make_train_block(model, self.negatives, o.lr, o.relation_lr or o.lr, o.eps,
                                            layout.num_rows, compute_groups(cfg), cfg.training.row_update,
                                            lr_schedule(cfg, num_train_edges))
        self.group_of_rel = relation_groups(cfg, ds)
        self.degrees = training_degrees(cfg, ds)  # per type, for negatives.degree_fraction (or None)
        self.feat = feature_rows(model, ds, self.negatives)  # featurized types' lists (or None)

    def batches(self, swap: Swap, edges: Future, seed: int) -> tuple[Batches, Layout]:
        """A bucket's batches (its edges, read by `edges`, shuffled with `seed`) and its Layout,
        for the slots `swap` puts its partitions in."""
        layout = self.layout.layout(swap.bucket, swap.slot_of)
        lhs_off, rhs_off, rel, w = edges.result()
        rt = self.ds.relation_types  # [R, 2]: each relation's rows start where its types' do
        shift = (layout.lo[rt[:, 0], 0].astype(np.int64), layout.lo[rt[:, 1], 1].astype(np.int64))
        group = None if self.group_of_rel is None else self.group_of_rel[rel]
        rng = np.random.default_rng([self.cfg.training.seed, seed, *swap.bucket])
        b = make_batches(lhs_off, rhs_off, rel, w, group, self.chunk, self.chunks_per_batch,
                         self.cfg.training.batches_per_dispatch, rng, shift,
                         block_workers(jax.default_backend(), len(os.sched_getaffinity(0))))
        deg = None if self.degrees is None else jnp.asarray(
            degree_table(self.layout, swap.bucket, swap.slot_of, self.degrees))
        return b, Layout(jnp.asarray(layout.lo), jnp.asarray(layout.n), deg, self.feat)

    def compile(self, state: TrainState, tables: Tables) -> tuple[TrainState, Tables, float]:
        """Compile the step (a call that runs zero batches); returns the seconds it took."""
        s, c, p = self.cfg.training.batches_per_dispatch, self.chunks_per_batch, self.chunk
        block = Batch(jnp.full((s, c, p), -1, jnp.int32), jnp.full((s, c, p), -1, jnp.int32),
                      jnp.zeros((s, c, p), jnp.int32), jnp.zeros((s, c, p), jnp.float32))
        t = len(self.layout.types)
        deg = None if self.degrees is None else jnp.zeros((self.layout.num_rows + 1,), jnp.int32)
        layout = Layout(jnp.zeros((t, 2), jnp.int32), jnp.ones((t, 2), jnp.int32), deg, self.feat)
        t0 = time.perf_counter()
        state, tables, stats = self.train_block(state, tables, block, jnp.int32(0), layout)
        jax.block_until_ready(stats)
        return state, tables, time.perf_counter() - t0

    def train(self, state: TrainState, tables: Tables, batches: Batches, layout: Layout, bar,
              where: str, kept: str) -> tuple[TrainState, Tables, dict[str, float]]:
        """Run the block step over a bucket's batches; returns the state, the tables and the summed
        {"loss", "reg", "count"}. Figures are pulled every training.log_every_dispatches dispatches
        (advancing the progress `bar`); a non-finite loss stops with TrainingDiverged (`where`:
        the epoch and bucket, `kept`: the version that stays the checkpoint)."""
        s = self.cfg.training.batches_per_dispatch
        every = max(1, self.cfg.training.log_every_dispatches)
        pending: list[dict] = []
        totals = {"loss": 0.0, "reg": 0.0, "count": 0.0}

        def pull() -> None:
            for st in jax.device_get(pending):
                if st["nonfinite"] > 0:
                    raise TrainingDiverged(f"non-finite loss in {where}; stopped without saving ({kept}). "
                                           f"{ADVICE}")
                for key in totals:
                    totals[key] += float(st[key])
                if bar is not None:
                    bar.update(int(st["count"]))
            pending.clear()

        for i in range(batches.num_blocks(s)):
            arrays, n = batches.block(i, s)
            block = Batch(*jax.device_put(arrays))  # a transfer, not a computation queued behind the step
            state, tables, stats = self.train_block(state, tables, block, jnp.int32(n), layout)
            pending.append(stats)
            if len(pending) >= every:
                pull()
        pull()
        return state, tables, totals
