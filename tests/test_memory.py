"""Host memory helpers (jgraph.memory): huge-page backing of a fresh working table, and the
partition buffer's memory model (slots + in-flight copies; B from a budget)."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgraph.memory import (
    IN_FLIGHT,
    back_with_huge_pages,
    buffer_for_budget,
    buffer_memory,
    partition_bytes,
    peak_rss_mib,
    reset_peak_rss,
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="madvise huge pages: Linux only")
def test_fresh_zero_table_keeps_its_values_and_takes_writes():
    """Dropping the zero pages of a fresh table reads back as zeros; writes after it (the donated,
    in-place updates of training) land and read back; a buffer under one huge page is left alone."""
    table = jnp.zeros((5000, 500), jnp.float32)  # 10 MB: several 2 MiB pages
    jax.block_until_ready(table)
    assert back_with_huge_pages(table)
    assert float(jnp.abs(table).max()) == 0.0
    put = jax.jit(lambda t, v: t.at[::7].set(v), donate_argnums=(0,))
    rows = np.arange(table[::7].size, dtype=np.float32).reshape(table[::7].shape)
    table = put(table, jnp.asarray(rows))
    got = np.asarray(table)
    np.testing.assert_array_equal(got[::7], rows)
    assert not got[1::7].any()
    assert not back_with_huge_pages(jnp.zeros((10,), jnp.float32))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc/self/clear_refs: Linux only")
def test_reset_peak_rss_forgets_a_freed_peak():
    """A benchmark row's peak RSS is its own: after a 400 MB array is freed and the peak reset,
    the reported peak is back near the present RSS."""
    big = np.ones(100_000_000, np.float32)  # 400 MB, touched
    high = peak_rss_mib()
    del big
    assert reset_peak_rss()
    assert peak_rss_mib() < high - 300


def test_partition_buffer_memory_model():
    """Slot = emb + acc + owner per row, copy = emb + acc; B slots + in-flight copies; the budget
    picks the largest B that fits, at least 2 and at most P; storage.buffer_memory_gb reaches the
    layout through assembly.buffer_partitions."""
    slot, copy = partition_bytes(1000, 100)
    assert (slot, copy) == (1000 * 408, 1000 * 404)
    assert partition_bytes(1000, 100, itemsize=2) == (1000 * 208, 1000 * 204)
    assert IN_FLIGHT == 4 and buffer_memory(slot, copy, 8) == 8 * slot + 4 * copy
    assert buffer_memory(slot, copy, 8, in_flight=0) == 8 * slot
    budget = buffer_memory(slot, copy, 6)
    assert buffer_for_budget(budget, slot, copy, 32) == 6
    assert buffer_for_budget(budget - 1, slot, copy, 32) == 5
    assert buffer_for_budget(budget, slot, copy, 4) == 4  # at most P
    assert buffer_for_budget(slot, slot, copy, 32) == 2  # at least 2
    from helpers import cfg_of

    from jgraph.assembly import buffer_partitions
    from jgraph.plan.partition import PartitionLayout

    layout = PartitionLayout.build({"a": 16_000}, {"a": 16}, seed=0)  # capacity 1000
    gb = buffer_memory(*partition_bytes(1000, 16), 7) / 2**30
    cfg = cfg_of([f"storage.buffer_memory_gb={gb}"])
    assert cfg.model.dimension == 16 and buffer_partitions(cfg, layout) == 7
    assert buffer_partitions(cfg_of(["storage.buffer_partitions=5"]), layout) == 5
