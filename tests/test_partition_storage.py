"""Partition arrays in shards: round trips of any size, shard-by-shard reads and writes (the IO
buffers of a partition stay within a shard), and the streaming paths of the checkpoint store."""

from __future__ import annotations

import numpy as np
import pytest
import tensorstore as ts

from jgraph.memory import ALIGN, HostBuffers
from jgraph.storage import shards as partition
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.storage.shards import read_array, read_blocks, read_rows, shard_rows, write_blocks


@pytest.fixture
def small_shards(monkeypatch):
    """Shards of 8 rows of 4 float32 (inner chunks of 4 rows), so small arrays have several."""
    monkeypatch.setattr(partition, "INNER_ROWS", 4)
    monkeypatch.setattr(partition, "SHARD_BYTES", 8 * 4 * 4)


def test_shard_rows_bound_bytes_and_cover_small_arrays():
    rows, inner = shard_rows((1_000_000, 100))
    assert rows % inner == 0 and rows * 100 * 4 <= partition.SHARD_BYTES
    assert shard_rows((10, 100)) == (10, 10)  # a small array is one shard of one inner chunk
    assert shard_rows((0, 3)) == (1, 1)


@pytest.mark.parametrize("shape", [(0, 4), (1, 4), (8, 4), (21, 4), (21,)])
def test_round_trip_in_several_shards(small_shards, shape):
    ctx = ts.Context()
    data = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    partition.write_array("memory://a/", data, ctx)
    got = read_array("memory://a/", ctx)
    assert got.shape == shape and got.dtype == np.float32
    np.testing.assert_array_equal(got, data)
    assert got.size == 0 or got.ctypes.data % ALIGN == 0, "read into an aligned buffer (jax aliases it)"
    a, b = min(shape[0], 3), min(shape[0], 11)  # rows across a shard boundary where there is one
    np.testing.assert_array_equal(read_rows("memory://a/", a, b, ctx), data[a:b])


def test_blocks_are_whole_shards(small_shards):
    ctx = ts.Context()
    data = np.random.default_rng(0).standard_normal((21, 4)).astype(np.float32)
    asked = []

    def block(a, b):
        asked.append((a, b))
        return data[a:b]

    write_blocks("memory://b/", data.shape, "float32", block, ctx)
    assert asked == [(0, 8), (8, 16), (16, 21)]
    got = list(read_blocks("memory://b/", ctx))
    assert [(s, r.shape[0]) for s, r in got] == [(0, 8), (8, 8), (16, 5)]
    np.testing.assert_array_equal(np.concatenate([r for _, r in got]), data)


@pytest.mark.parametrize("where", ["memory", "file"])
def test_store_streams_partitions_in_and_out(small_shards, tmp_path, where):
    loc = "memory://s/" if where == "memory" else str(tmp_path / "ckpt")
    store = CheckpointStore(loc)
    assert store.read_partition_blocks("e", 0) is None  # never written
    emb = np.random.default_rng(1).standard_normal((19, 4)).astype(np.float32)
    acc = np.arange(19, dtype=np.float32)
    store.write_partition_blocks("e", 0, emb.shape, lambda a, b: emb[a:b], acc)
    blocks, got_acc = store.read_partition_blocks("e", 0)
    np.testing.assert_array_equal(got_acc, acc)
    np.testing.assert_array_equal(np.concatenate([r for _, r in blocks]), emb)
    # the whole-array path reads the same data; a background write is waited for by a stream
    np.testing.assert_array_equal(store.read_partition("e", 0).result()[0], emb)
    store.write_partition("e", 0, emb + 1, acc)
    blocks, _ = store.read_partition_blocks("e", 0)
    np.testing.assert_array_equal(np.concatenate([r for _, r in blocks]), emb + 1)
    store.commit({"epoch": 1})
    # committed: read back by this store, and (on disk) by a new one
    again = CheckpointStore(loc, context=store.context if where == "memory" else None)
    np.testing.assert_array_equal(again.read_partition("e", 0).result()[0], emb + 1)
    store.close()
    again.close()


def _swap_through(store: CheckpointStore, pool: HostBuffers, emb: np.ndarray) -> None:
    """Write `emb` from a pooled buffer (given back when written), read it into a pooled buffer."""
    buf = pool.take(emb.shape, emb.dtype)
    buf[...] = emb
    released = []
    store.write_partition("e", 0, buf, np.ones(emb.shape[0], np.float32),
                          done=lambda: (released.append(True), pool.give(buf))).result()
    assert released == [True]
    taken = []

    def alloc(shape, dtype):
        taken.append(pool.take(shape, dtype))
        return taken[-1]

    got, _ = store.read_partition("e", 0, alloc).result()
    assert got is taken[0] and got.dtype == emb.dtype and got.ctypes.data % ALIGN == 0
    assert got.base is buf.base, "the written buffer, given back, is reused for the read"
    np.testing.assert_array_equal(got, emb)
    pool.give(got)


def test_partition_read_into_given_buffers_and_buffers_reused(small_shards, tmp_path):
    """read_partition reads rows into the buffer its `alloc` gives; buffers given back are
    handed out again (no fresh memory per swap), bfloat16 included."""
    import ml_dtypes

    store = CheckpointStore(str(tmp_path / "ckpt"))
    pool = HostBuffers(keep=2)
    emb = np.arange(21 * 4, dtype=np.float32).reshape(21, 4)
    _swap_through(store, pool, emb)
    _swap_through(store, pool, emb.astype(ml_dtypes.bfloat16))
    store.close()


def test_host_buffers_keep_at_most_keep_and_ignore_foreign_arrays():
    pool = HostBuffers(keep=1)
    a, b = pool.take((3, 5), np.float32), pool.take((3, 5), np.float32)
    assert a.base is not b.base and a.ctypes.data % ALIGN == 0 and b.ctypes.data % ALIGN == 0
    pool.give(a)
    pool.give(b)  # over `keep`: dropped
    pool.give(np.zeros((3, 5), np.float32))  # not from take: ignored
    assert pool.take((3, 5), np.float32).base is a.base
    assert pool.take((3, 5), np.float32).base is not a.base
    assert pool.take((15,), np.float32).shape == (15,)
