"""Partition calibration (jgraph/train/calibrate.py): after training with partitions, one shift per
partition is fitted with the softmax over every entity of the type; evaluation, export and the
evaluate CLI read the rows with the saved shifts."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from helpers import cfg_of, model_of, trainer_of

from jgraph.cli.evaluate import evaluate
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.calibrate import fit_partition_shifts
from jgraph.train.run import run
from jgraph.trained import load_run, open_run


@pytest.mark.integration
@pytest.mark.parametrize("model", [["loss=softmax"],
                                   ["model=transe", "model.reciprocal=false", "loss=softmax"]])
def test_fitted_shifts_lower_the_full_softmax_loss(model):
    """Reciprocal and standard mode (one relation per step): the loss falls, the shifts of the
    unpartitioned rows stay 0, and from zero shifts the fit moves them."""
    cfg = cfg_of(model + ["entities.entity.num_partitions=3", "storage.save=false",
                          "training.num_epochs=2", "training.calibration_steps=0"])
    trainer = trainer_of(cfg)
    trainer.fit()
    emb, offsets = trainer.full_tables(read_out=False)
    tp = trainer.layout.types[0]
    tr = trainer.ds.splits["train"]
    g = tp.num_partitions + 1  # a 4th shift nobody trains
    trainable = np.array([True, True, True, False])
    shifts, before, after = fit_partition_shifts(
        trainer.model, trainer.state.params, emb, offsets, np.array([tp.count]), tp.part_of,
        np.zeros((g, cfg.model.dimension), np.float32), trainable, tr.lhs, tr.rel, tr.rhs, 60, 0)
    trainer.close()
    assert shifts.shape == (g, cfg.model.dimension)
    assert after < before, (before, after)
    assert np.abs(shifts[:3]).max() > 0 and not shifts[3].any()


@pytest.mark.integration
def test_read_out_after_calibration_reuses_its_table():
    """The evaluation table right after calibrate() is its assembled table plus the fitted shifts,
    read with no partition loaded from the store again; the next call (nothing kept) assembles
    from the store and gives the same rows."""
    cfg = cfg_of(["loss=softmax", "entities.entity.num_partitions=3", "storage.save=false",
                  "training.num_epochs=1"])
    trainer = trainer_of(cfg)
    trainer.fit()
    cal = trainer.calibrate()
    assert cal["loss_after"] < cal["loss_before"], cal
    raw, _ = trainer.full_tables(read_out=False)
    part_of = trainer.layout.types[0].part_of
    shifts = np.asarray(trainer.part_shifts[0])
    reads = []
    read = trainer.store.read_partition
    trainer.store.read_partition = lambda *a, **k: reads.append(a) or read(*a, **k)
    reused, offsets = trainer.full_tables()
    assert reads == []
    assembled, offsets_again = trainer.full_tables()
    assert len(reads) >= 1  # the partitions not resident at the end of training
    trainer.close()
    np.testing.assert_array_equal(offsets, offsets_again)
    np.testing.assert_allclose(np.asarray(reused), np.asarray(assembled), atol=1e-6)
    # the read-out table is the raw rows plus each row's partition shift (not the raw rows, not
    # shifted by another partition's vector)
    assert shifts.shape == (3, 16) and np.abs(shifts).max() > 1e-4
    np.testing.assert_allclose(np.asarray(reused), np.asarray(raw) + shifts[part_of], atol=1e-5)


CALIBRATED = ["loss=softmax", "entities.entity.num_partitions=3", "training.num_epochs=2"]


@pytest.fixture(scope="module")
def calibrated_run(tmp_path_factory):
    """(run dir, metrics) of a 3-partition softmax run, calibrated at the end (read only)."""
    out = tmp_path_factory.mktemp("calibrated")
    return out, run(cfg_of(CALIBRATED), str(out))


@pytest.mark.integration
def test_calibrated_shifts_are_saved_and_read_out_everywhere(calibrated_run):
    """A 3-partition run calibrates (default), saves its shifts with the parameters, and the
    evaluation at the end of training, `jgraph.cli.evaluate`, `load_run` and `OpenRun.partition` all
    read the stored rows plus those shifts."""
    tmp_path, m = calibrated_run
    assert m["calibration"]["loss_after"] < m["calibration"]["loss_before"]
    res = evaluate(str(tmp_path), ["test"], ["filtered"], None, [])
    assert res["eval"]["test"]["filtered"]["avg"]["mrr"] == pytest.approx(
        m["eval"]["test"]["filtered"]["avg"]["mrr"], rel=1e-6)
    opened = open_run(str(tmp_path))
    assert set(opened._shifts) == {0} and opened._shifts[0].shape == (3, 16)
    full = np.asarray(load_run(str(tmp_path)).emb)
    tp = opened.layout.types[0]
    for p in range(3):
        stored = opened.partition(0, p, centered=False)
        np.testing.assert_allclose(opened.partition(0, p), stored + opened._shifts[0][p], atol=1e-6)
        np.testing.assert_allclose(full[tp.members[p]], stored + opened._shifts[0][p], atol=1e-6)
    opened.close()


@pytest.mark.integration
def test_one_partition_is_not_calibrated(tmp_path):
    m = run(cfg_of(["loss=softmax", "training.num_epochs=1"]), str(tmp_path))
    assert m["calibration"] is None
    opened = open_run(str(tmp_path))
    assert opened._shifts == {}
    opened.close()


@pytest.mark.integration
def test_a_resumed_run_refits_the_shifts(calibrated_run, tmp_path):
    """Shifts belong to the rows they were fitted to: a run resumed for more epochs drops them
    when it trains again and fits new ones at the end."""
    shutil.copytree(calibrated_run[0] / "checkpoint", tmp_path / "c")
    first = open_run(str(tmp_path / "c"))._shifts[0]
    cfg = cfg_of(CALIBRATED + [f"storage.checkpoint_dir={tmp_path / 'c'}", "training.num_epochs=3"])
    trainer = trainer_of(cfg, CheckpointStore(str(tmp_path / "c")))
    np.testing.assert_array_equal(trainer.part_shifts[0], first)  # restored with the checkpoint
    trainer.fit()
    assert trainer.part_shifts == {}
    cal = trainer.calibrate()
    assert cal["loss_after"] < cal["loss_before"], cal
    assert not np.array_equal(trainer.part_shifts[0], first)
    trainer.close()


# ---------------------------------------------------------------- against numpy (no training)
# two entity types: type 0 rows [0, 5), type 1 rows [5, 12) of one table; relations 0: t0 -> t1,
# 1: t1 -> t0, 2: t0 -> t1 (translation + dot: scores are x . (y + d_r) in standard mode)
TYPES2 = np.array([[0, 1], [1, 0], [0, 1]])
OFFSETS2, COUNTS2 = np.array([0, 5]), np.array([5, 7])


def _numpy_edge_loss(table, params, reciprocal, pair, h, r, t) -> float:
    """The calibration objective in float64: mean over the edges of -log softmax of the true
    entity among every entity of the replaced side's type, tails replaced plus heads replaced."""
    table = np.asarray(table, np.float64)
    lt, rt = pair
    lhs_rows = table[OFFSETS2[lt]:OFFSETS2[lt] + COUNTS2[lt]]
    rhs_rows = table[OFFSETS2[rt]:OFFSETS2[rt] + COUNTS2[rt]]
    d_rhs = np.asarray(params["rhs"]["translation"]["translation"], np.float64)
    d_lhs = np.asarray(params["lhs"]["translation"]["translation"], np.float64) if reciprocal else None
    total = 0.0
    for b in range(len(h)):
        x, y, dr = lhs_rows[h[b]], rhs_rows[t[b]], r[b]
        # tails replaced: (x, r, ?)
        s = rhs_rows @ (x + d_lhs[dr]) if reciprocal else (rhs_rows + d_rhs[dr]) @ x
        tail = np.log(np.exp(s - s.max()).sum()) + s.max() - s[t[b]]
        # heads replaced: (?, r, y)
        s = lhs_rows @ (y + d_rhs[dr])
        head = np.log(np.exp(s - s.max()).sum()) + s.max() - s[h[b]]
        total += (tail + head) / len(h)
    return total


def _two_type_model(reciprocal: bool):
    import jax.numpy as jnp

    model = model_of(dimension=4, operator_of_relation=["translation"] * 3, relation_types=TYPES2,
                     num_types=2, loss="softmax", reciprocal=reciprocal)
    rng = np.random.default_rng(5)
    params = {side: {"translation": {"translation": jnp.asarray(rng.standard_normal((3, 4)), jnp.float32)}}
              for side in (("lhs", "rhs") if reciprocal else ("rhs",))}
    table = rng.standard_normal((12, 4)).astype(np.float32)
    return model, params, table


@pytest.mark.parametrize("reciprocal", [False, True])
def test_edge_loss_matches_numpy_with_two_entity_types(reciprocal):
    """calibrate.edge_loss for a (type 0 -> type 1) and a (type 1 -> type 0) relation: the float64
    softmax over the replaced side's type only (5 heads, 7 tails), both sides."""
    import jax.numpy as jnp

    from jgraph.train.calibrate import edge_loss

    model, params, table = _two_type_model(reciprocal)
    rng = np.random.default_rng(0)
    for rel, pair in ((0, (0, 1)), (1, (1, 0))):
        h = rng.integers(0, COUNTS2[pair[0]], 6)
        t = rng.integers(0, COUNTS2[pair[1]], 6)
        r = np.full(6, rel)
        lo_n = (int(OFFSETS2[pair[0]]), int(COUNTS2[pair[0]]), int(OFFSETS2[pair[1]]), int(COUNTS2[pair[1]]))
        got = float(edge_loss(model, params, jnp.asarray(table), lo_n, pair, jnp.asarray(h), jnp.asarray(r),
                              jnp.asarray(t)))
        want = _numpy_edge_loss(table, params, reciprocal, pair, h, r, t)
        assert got == pytest.approx(want, rel=1e-5), (rel, got, want)


@pytest.mark.parametrize("reciprocal", [False, True])
def test_fit_with_two_entity_types_against_numpy(reciprocal):
    """fit_partition_shifts on a two-type graph (type 0 in 2 partitions, type 1 unpartitioned): the
    reported losses before and after are the numpy objective on the 4 x BATCH probe edges (drawn
    first from the seed) with the initial and with the returned shifts, grouped by relation
    (standard) or by type pair (reciprocal); the fit lowers it; the unpartitioned type's shift and
    the untrainable one stay exactly as given (0)."""
    from jgraph.train import calibrate

    model, params, table = _two_type_model(reciprocal)
    rng = np.random.default_rng(1)
    n = 300
    rel = rng.integers(0, 3, n)
    pairs = TYPES2[rel]
    lhs = np.array([rng.integers(0, COUNTS2[a]) for a, _ in pairs])
    rhs = np.array([rng.integers(0, COUNTS2[b]) for _, b in pairs])
    # shifts: 0, 1 the partitions of type 0 (rows 0-2 / 3-4); 2 type 1's (untrainable, stays 0)
    shift_of_row = np.array([0, 0, 0, 1, 1] + [2] * 7)
    init = np.zeros((3, 4), np.float32)
    init[0] = 0.1
    trainable = np.array([True, True, False])
    shifts, before, after = calibrate.fit_partition_shifts(
        model, params, table, OFFSETS2, COUNTS2, shift_of_row, init, trainable, lhs, rel, rhs, 30, 3)
    assert not shifts[2].any()
    assert np.abs(shifts[:2] - init[:2]).max() > 1e-3  # both partitions moved
    probe = np.random.default_rng(3).integers(0, n, 4 * calibrate.BATCH)

    def objective(s):
        shifted = table + (s * trainable[:, None])[shift_of_row]
        key = pairs[probe] if reciprocal else rel[probe][:, None]
        total = 0.0
        for k in np.unique(key, axis=0):
            idx = probe[(key == k).all(1)]
            pair = tuple(k) if reciprocal else tuple(TYPES2[k[0]])
            loss = _numpy_edge_loss(shifted, params, reciprocal, pair, lhs[idx], rel[idx], rhs[idx])
            total += loss * idx.size
        return total / probe.size

    assert before == pytest.approx(objective(init), rel=1e-4)
    assert after == pytest.approx(objective(shifts), rel=1e-4)
    assert after < before - 1e-3, (before, after)
