"""The log-Q correction (negatives.logq_correction; Yi et al. 2019): each sampled negative's softmax
logit lowered by the log of its expected count among its chunk's negatives (batch negatives drawn
in proportion to degree, uniform ones 1/n, degree_fraction ones by degree), checked against a
plain numpy reference on a tiny batch: the counts, the corrected loss, and the jitted step's loss.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cfg_of, model_of

import models  # noqa: F401  (registers the built-in scorers)
from jgraph.assembly import negative_spec
from jgraph.core.hashrng import batch_seed
from jgraph.core.model import Batch, Layout
from jgraph.core.negatives import log_expected_counts
from jgraph.core.step import (
    NegativeSpec,
    Tables,
    batch_loss,
    gather_ids,
    init_state,
    make_train_block,
    sampling_log_counts,
    side_blocks,
)
from jgraph.errors import ConfigError
from jgraph.validation import validate

K, D = 16, 4
DEG_L = np.array([3, 1, 0, 7, 2, 5])  # rows 1..6 (the lhs region)
DEG_R = np.array([4, 4, 1, 9, 2])  # rows 9..13 (the rhs region)
LAYOUT = Layout(jnp.asarray([[1, 9]], jnp.int32), jnp.asarray([[6, 5]], jnp.int32),
                jnp.asarray(np.concatenate([[0], np.cumsum(DEG_L), [0, 0], np.cumsum(DEG_R),
                                            [0, 0, 0]]).astype(np.int32)))
# two chunks of 3 positives; chunk 1's last positive is padding; (6, 6) would be a self-loop
BATCH = Batch(lhs=jnp.asarray([[1, 4, 6], [4, 2, -1]], jnp.int32),
              rhs=jnp.asarray([[9, 12, 13], [10, 11, -1]], jnp.int32),
              rel=jnp.zeros((2, 3), jnp.int32), weight=jnp.asarray([[1, 2, 1], [1, 1, 0]], jnp.float32))


def _count_ref(row: int, lo: int, deg: np.ndarray, nb: int, u: int, nd: int) -> float:
    """Expected occurrences of `row` among a positive's negatives, from the degree list itself."""
    return (nb + nd) * deg[row - lo] / deg.sum() + (u - nd) / deg.size


def test_log_expected_counts_match_numpy():
    ids = np.array([[1, 3, 4, 6, 6, 2], [5, 2, 1, 4, 3, 6]])
    nb = np.array([3.0, 1.0])
    got = np.asarray(log_expected_counts(jnp.asarray(ids), jnp.asarray([1, 1]), jnp.asarray([6, 6]),
                                         LAYOUT.deg, jnp.asarray(nb), 5, 2))
    want = np.log([[_count_ref(r, 1, DEG_L, nb[c], 5, 2) for r in ids[c]] for c in range(2)])
    np.testing.assert_allclose(got, want, rtol=1e-6)
    # uniform draws over two regions (negatives.uniform_from=bucket): a row of the second region
    # is only a uniform draw, 1/(6 + 5) each
    two = np.asarray(log_expected_counts(jnp.asarray([[4, 11]]), jnp.asarray([1]), jnp.asarray([6]),
                                         LAYOUT.deg, jnp.asarray([2.0]), 4, 1,
                                         (jnp.asarray([9]), jnp.asarray([5]))))
    np.testing.assert_allclose(np.exp(two), [[3 * 7 / 18 + 3 / 11, 3 / 11]], rtol=1e-6)


def _loss_ref(table: np.ndarray, ids: tuple[np.ndarray, np.ndarray], u: int) -> float:
    """Softmax loss of BATCH (dot, no operator, batch + u uniform negatives + the self-negative),
    each sampled negative's score minus log(its expected count), in plain numpy."""
    lhs, rhs, w = (np.asarray(a) for a in (BATCH.lhs, BATCH.rhs, BATCH.weight))
    total = 0.0
    for c in range(lhs.shape[0]):
        ok = lhs[c] >= 0
        nb = ok.sum() - 1
        for i in np.flatnonzero(ok):
            x, y = table[lhs[c, i]], table[rhs[c, i]]
            for side, (lo, deg, query, answer) in enumerate(((1, DEG_L, y, x), (9, DEG_R, x, y))):
                cand = ids[side][c]  # P batch columns, then u uniform ones
                logits = []
                for j, r in enumerate(cand):
                    if j < lhs.shape[1] and (j == i or not ok[j]):
                        continue
                    logits.append(query @ table[r] - np.log(_count_ref(r, lo, deg, nb, u, 0)))
                logits.append(query @ query)  # the query's own entity: no draw, not corrected
                pos = query @ answer
                total += w[c, i] * (np.logaddexp(pos, np.logaddexp.reduce(logits)) - pos)
    return total


def _setup(u: int = 3):
    model = model_of(dimension=D, loss="softmax")
    neg = NegativeSpec(u, True, False, (True, True), self_negative=True, logq=True)
    table = np.random.default_rng(3).standard_normal((K, D)).astype(np.float32)
    return model, neg, table


def test_corrected_softmax_matches_numpy():
    model, neg, table = _setup()
    ids = side_blocks(neg, gather_ids(model, neg, BATCH, LAYOUT, jnp.uint32(11)))
    params = model.init_params()
    blocks = [tuple(jnp.asarray(table)[i] for i in ids)]
    counts = sampling_log_counts(model, neg, ids, BATCH, LAYOUT)
    loss, _ = batch_loss(model, neg, params, blocks, BATCH, LAYOUT, K, 1, counts)
    want = _loss_ref(table, tuple(np.asarray(i) for i in ids), 3)
    assert float(loss) == pytest.approx(want, rel=1e-5)
    plain, _ = batch_loss(model, neg, params, blocks, BATCH, LAYOUT, K, 1)
    assert abs(float(plain) - want) > 1.0  # the correction matters on this batch


def test_the_jitted_step_trains_the_corrected_loss():
    """One batch of make_train_block: its loss statistic is the corrected loss of the rows it
    gathered (the same draws: hashrng.batch_seed of the state), and its update differs from the
    uncorrected step's."""
    model, neg, table = _setup()
    emb = np.vstack([table, np.zeros((1, D), np.float32)])
    moved = {}
    for on in (True, False):
        spec = neg._replace(logq=on)
        state = init_state(model, seed=2, rng_impl="threefry", relation_lr=0.1, eps=1e-10)
        ids = side_blocks(spec, gather_ids(model, spec, BATCH, LAYOUT, batch_seed(state.key, state.step)))
        counts = sampling_log_counts(model, spec, ids, BATCH, LAYOUT) if on else None
        want, _ = batch_loss(model, spec, state.params, [tuple(jnp.asarray(table)[i] for i in ids)],
                             BATCH, LAYOUT, K, 1, counts)
        tables = Tables(jnp.asarray(emb), jnp.zeros((K + 1,), jnp.float32), jnp.zeros((K + 1,), jnp.int32))
        block = jax.tree_util.tree_map(lambda a: a[None], BATCH)
        step = make_train_block(model, spec, 0.1, 0.1, 1e-10, K)
        _, tables, stats = step(state, tables, block, jnp.int32(1), LAYOUT)
        assert float(stats["loss"]) == pytest.approx(float(want), rel=1e-5)
        moved[on] = np.asarray(tables.emb)[:K] - table
    assert np.abs(moved[True] - moved[False]).max() > 1e-3


def test_config():
    """negatives.logq_correction reaches the NegativeSpec; it needs the softmax loss."""
    assert negative_spec(cfg_of(["loss=softmax", "negatives.logq_correction=true"])).logq
    assert not negative_spec(cfg_of(["loss=softmax"])).logq
    with pytest.raises(ConfigError, match="logq_correction"):
        validate(cfg_of(["loss=ranking", "negatives.logq_correction=true"]))
