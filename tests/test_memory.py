"""Host memory helpers (jgraph.memory): huge-page backing of a fresh working table."""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgraph.memory import back_with_huge_pages


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
