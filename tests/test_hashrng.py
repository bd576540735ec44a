"""Counter-based random bits (jgraph.core.hashrng): exact range mapping, uniform bits, per-batch seeds."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jgraph.core.hashrng import batch_seed, below, bits, derive


def test_below_is_floor_of_x_times_n_over_2_32():
    """Checked against 64-bit integer arithmetic, including n near 2^31 (where float32 draws
    would reach only 2^24 distinct values)."""
    x = np.random.default_rng(0).integers(0, 2**32, 20_000, dtype=np.uint64)
    x[:3] = [0, 2**32 - 1, 2**31]
    for n in (0, 1, 3, 1000, 2**20 + 3, 123_456_789, 2**31 - 1):
        got = np.asarray(below(jnp.asarray(x.astype(np.uint32)), jnp.full(x.shape, n, jnp.int32)))
        want = ((x * np.uint64(n)) >> np.uint64(32)).astype(np.int64)
        np.testing.assert_array_equal(got, want, err_msg=f"n={n}")
    big = np.asarray(below(bits(jnp.uint32(7), (200_000,)), jnp.int32(2**31 - 1)))
    assert np.unique(big).size > 199_000  # a large range is really reached, not 2^24 values


def test_bits_look_uniform_and_depend_on_the_seed():
    b = np.asarray(bits(jnp.uint32(1), (400, 500)))
    assert b.shape == (400, 500) and b.dtype == np.uint32
    # every bit position is set about half the time (200k draws: +-0.5% is > 4 sigma)
    ones = np.stack([(b >> k) & 1 for k in range(32)]).reshape(32, -1).mean(axis=1)
    assert np.all(np.abs(ones - 0.5) < 0.005), ones
    counts = np.bincount(np.asarray(below(jnp.asarray(b.ravel()), jnp.int32(10))), minlength=10)
    assert counts.min() > 19_000 and counts.max() < 21_000  # 20k expected per value
    other = np.asarray(bits(jnp.uint32(2), (400, 500)))
    assert np.mean(b == other) < 1e-3
    np.testing.assert_array_equal(b, np.asarray(bits(jnp.uint32(1), (400, 500))))  # reproducible


def test_batch_seeds_differ_by_step_key_and_stream():
    key = jax.random.key(3)
    seeds = np.asarray(jax.jit(jax.vmap(lambda s: batch_seed(key, s)))(jnp.arange(1000, dtype=jnp.int32)))
    assert len(set(seeds.tolist())) == 1000  # (one vmapped call: 1000 eager calls took 10-40 s)
    assert seeds[5] == int(batch_seed(key, jnp.int32(5)))  # the same seeds as one call each
    assert int(batch_seed(jax.random.key(4), jnp.int32(0))) != int(batch_seed(key, jnp.int32(0)))
    s = batch_seed(key, jnp.int32(5))
    assert len({int(derive(s, i)) for i in range(3)} | {int(s)}) == 4
    rbg = jax.random.key(3, impl="rbg")  # any key type: its bits are hashed
    assert batch_seed(rbg, jnp.int32(0)).dtype == jnp.uint32
