"""Host memory helpers (jgraph.memory): huge-page backing of a fresh working table."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgraph.memory import back_with_huge_pages, peak_rss_mib, reset_peak_rss


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
