"""Early stopping (training.early_stopping_patience): the patience rule, and a training run whose
validation MRR peaks early ends after `patience` worse evaluations, evaluates the best epoch's
tables (its final validation metrics equal that epoch's periodic ones) and keeps it as the
checkpoint snapshot `best`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import cfg_of

from jgraph.errors import ConfigError
from jgraph.train import early_stop
from jgraph.train.early_stop import EarlyStopping
from jgraph.validation import validate


def test_patience_rule_and_host_copies():
    """MRRs .1 .3 .2 .25 .29 with patience 2: the best is epoch 1 (0-based), the stop comes after
    epoch 3 (two evaluations without beating .3), and the kept tables are copies."""
    s = EarlyStopping(patience=2, num_epochs=10)
    emb = np.zeros((3, 2), np.float32)
    stops = []
    for epoch, mrr in enumerate([0.1, 0.3, 0.2, 0.25]):
        emb[:] = epoch
        s.update(epoch, mrr, emb, np.array([0]), {"r": np.full(2, epoch, np.float32)})
        stops.append(s.epoch_done(epoch))
    assert stops == [False, False, False, True]
    assert s.best_epoch == 1 and s.best_mrr == 0.3
    np.testing.assert_array_equal(s.best[0], 1.0)  # not the caller's array (now all 3)
    assert s.best[2]["r"][0] == 1.0
    assert s.restores()
    assert s.summary() == {"patience": 2, "best_epoch": 2, "best_valid_mrr": 0.3, "epochs_trained": 4,
                           "stopped_early": True, "evaluated_epoch": 2}
    assert not s.update(4, float("nan"), emb, np.array([0]), {})  # NaN is never better


def test_config_checks():
    with pytest.raises(ConfigError, match="every_epochs"):
        validate(cfg_of(["training.early_stopping_patience=2", "eval.every_epochs=0"]))
    with pytest.raises(ConfigError, match=">= 0"):
        validate(cfg_of(["training.early_stopping_patience=-1", "eval.every_epochs=1"]))


def test_run_restores_the_best_epoch(tmp_path, monkeypatch):
    """4 epochs, evaluated each; the stopper is shown the validation MRR of epoch 2 (1-based) as is
    and every other epoch's lowered by 1, so epoch 2 is the best: with patience 1, training stops
    after epoch 3, and the final validation ranking (the same edges as the periodic one) gives
    exactly epoch 2's MRR, not epoch 3's; the checkpoint keeps epoch 2 as snapshots/best."""
    from jgraph.train.run import run

    real = early_stop.EarlyStopping.update

    def biased(self, epoch, mrr, *args):
        return real(self, epoch, mrr if epoch == 1 else mrr - 1.0, *args)

    monkeypatch.setattr(early_stop.EarlyStopping, "update", biased)
    cfg = cfg_of(["eval.every_epochs=1", "training.early_stopping_patience=1", "eval.splits=[valid]",
                  "eval.every_max_edges=300", "eval.max_edges=300", "model.dimension=8"])
    m = run(cfg, str(tmp_path))
    hist = m["history"]
    assert len(hist) == 3
    assert m["early_stopping"] == {"patience": 1, "best_epoch": 2, "best_valid_mrr": hist[1]["valid_mrr"],
                                   "epochs_trained": 3, "stopped_early": True, "evaluated_epoch": 2}
    final = m["eval"]["valid"]["filtered"]["avg"]["mrr"]
    assert final == pytest.approx(hist[1]["valid_mrr"], rel=1e-9, abs=1e-12)
    assert abs(final - hist[2]["valid_mrr"]) > 1e-6  # the last epoch really differs
    best = json.loads((tmp_path / "checkpoint" / "snapshots" / "best.json").read_text())
    assert best["progress"]["epoch"] == 2  # committed after epoch 2 (1-based)
    assert m["degree_baseline_mrr"]["valid"] > m["chance_mrr"]
