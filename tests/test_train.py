"""End to end: the default run learns, one compile serves every batch and bucket, checkpoints resume,
NaN stops the run without touching the last checkpoint, and `jgraph.cli.evaluate` agrees with training."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import cfg_of, trainer_of

from jgraph.core.scorer import LOSSES, Loss
from jgraph.errors import TrainingDiverged
from jgraph.storage.checkpoint import CheckpointStore
from jgraph.train.run import run

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration


def test_default_run_learns(tmp_path):
    m = run(cfg_of([]), str(tmp_path))
    test = m["eval"]["test"]["filtered"]["avg"]
    assert test["mrr"] > 5 * m["chance_mrr"], (test, m["chance_mrr"])
    assert test["count"] == 2 * m["data"]["edges"]["test"]
    assert m["history"][-1]["loss"] < m["history"][0]["loss"]
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["eval"]["test"]["filtered"]["avg"]["mrr"] == pytest.approx(test["mrr"])
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


@pytest.mark.parametrize("partitions", [1, 3])
def test_step_compiles_once_across_batches_and_buckets(partitions):
    cfg = cfg_of([f"entities.entity.num_partitions={partitions}", "storage.save=false",
                  "training.batches_per_dispatch=2", "training.num_epochs=2"])
    trainer = trainer_of(cfg)
    trainer.fit()
    buckets = partitions * partitions
    assert len(trainer.history) == 2
    assert trainer.train_block._cache_size() == 1, f"recompiled across {buckets} buckets"
    trainer.close()


def test_partitions_streamed_at_the_swap_train_the_same_model(monkeypatch):
    """storage.prefetch_partitions=false (partitions read and written shard by shard between
    storage and the working table at each swap) trains exactly the model the prefetching run
    trains; shards are made small so each partition is several."""
    from jgraph.storage import shards

    monkeypatch.setattr(shards, "INNER_ROWS", 8)
    monkeypatch.setattr(shards, "SHARD_BYTES", 32 * 16 * 4)
    tables = []
    for prefetch in ("true", "false"):
        cfg = cfg_of(["entities.entity.num_partitions=3", "training.num_epochs=2",
                      f"storage.prefetch_partitions={prefetch}"])
        trainer = trainer_of(cfg)
        trainer.fit()
        tables.append(np.asarray(trainer.full_tables()[0]))
        trainer.close()
    assert tables[0].shape == (400, 16)
    np.testing.assert_array_equal(tables[0], tables[1])


def _partition_buffer_run(buffer: int, order: str, crash_after: int | None = None):
    """(tables, history) of 2 epochs on the toy graph with P=4 and `buffer` slots, committing every
    2 buckets; crash_after: stop (an error) after that many buckets, then
    train on from the checkpoint in a new Trainer."""
    cfg = cfg_of(["entities.entity.num_partitions=4", "training.num_epochs=2",
                  "storage.checkpoint_every_buckets=2", f"storage.buffer_partitions={buffer}",
                  f"storage.bucket_order={order}"])
    import tensorstore as ts

    context = ts.Context()  # one in-memory kvstore for both trainers (no disk syncs: fast)
    trainer = trainer_of(cfg, CheckpointStore("memory://ckpt/", context))
    if crash_after is not None:
        seen = []

        def crash(line):
            seen.append(line)
            if len(seen) == crash_after:
                raise KeyboardInterrupt("killed")

        trainer.on_bucket = crash
        with pytest.raises(KeyboardInterrupt):
            trainer.fit()
        trainer.close()
        trainer = trainer_of(cfg, CheckpointStore("memory://ckpt/", context))
        assert trainer.progress == {"epoch": 1, "chunk": 0, "bucket": 4}  # mid-epoch 2
    trainer.fit()
    out = np.asarray(trainer.full_tables()[0]), trainer.history
    trainer.close()
    return out


def test_partition_buffer_trains_the_same_model_and_resumes_mid_epoch():
    """storage.buffer_partitions=3 (a third slot: Belady eviction, fewer loads) trains the model
    the two-slot buffer trains, up to float rounding (the working table's shape changes); with the
    beta order a run stopped mid-epoch resumes from its last commit to the uninterrupted result."""
    two, h2 = _partition_buffer_run(2, "inside_out")
    three, h3 = _partition_buffer_run(3, "inside_out")
    np.testing.assert_allclose(three, two, atol=1e-4)
    assert h3[1]["partition_loads"] < h2[1]["partition_loads"]
    assert h3[1]["partition_writes_skipped"] > 0  # committed and untouched since: not written again
    beta, hb = _partition_buffer_run(3, "beta")
    resumed, hr = _partition_buffer_run(3, "beta", crash_after=16 + 5)
    np.testing.assert_array_equal(resumed, beta)
    assert hr[0]["loss"] == hb[0]["loss"] and 0 < hr[1]["partition_loads"]  # (epoch 2: 12 buckets)


def test_resume_continues_where_it_stopped(tmp_path):
    ckpt = str(tmp_path / "ckpt")
    first = run(cfg_of([f"storage.checkpoint_dir={ckpt}", "training.num_epochs=2"]), str(tmp_path / "a"))
    assert len(first["history"]) == 2
    second = run(cfg_of([f"storage.checkpoint_dir={ckpt}", "training.num_epochs=3"]), str(tmp_path / "b"))
    assert [h["epoch"] for h in second["history"]] == [1, 2, 3]
    assert second["history"][:2] == first["history"]
    assert (tmp_path / "b" / "metrics.jsonl").read_text().count("\n") == 1  # only epoch 3 trained


def test_warm_start_carries_the_trained_model(tmp_path):
    """A run started from another run's checkpoint, before training a single epoch, scores exactly
    as that run did; a run on a graph with fewer entities keeps the ones it shares by name."""
    first = run(cfg_of(["training.num_epochs=2"]), str(tmp_path / "a"))
    warm = run(cfg_of(["training.num_epochs=0", f"storage.init_path={tmp_path / 'a'}"]), str(tmp_path / "b"))
    for split in ("valid", "test"):
        assert warm["eval"][split]["filtered"]["avg"]["mrr"] == pytest.approx(
            first["eval"][split]["filtered"]["avg"]["mrr"], rel=1e-5)
    cold = run(cfg_of(["training.num_epochs=0"]), str(tmp_path / "c"))
    trained = first["eval"]["test"]["filtered"]["avg"]["mrr"]
    assert cold["eval"]["test"]["filtered"]["avg"]["mrr"] < 0.5 * trained


def test_bfloat16_tables_learn_resume_and_are_stored_in_half_the_bytes(tmp_path):
    """model.embedding_dtype=bfloat16: the working table and the stored partitions are bfloat16,
    evaluation sees float32 rows, a run resumes from its checkpoint, and the model learns about as
    well as in float32 (stochastic rounding keeps the small late updates)."""
    common = ["entities.entity.num_partitions=2"]
    f32 = run(cfg_of(common), str(tmp_path / "f32"))
    ckpt = str(tmp_path / "ckpt")
    bf16 = common + ["model.embedding_dtype=bfloat16", f"storage.checkpoint_dir={ckpt}"]
    run(cfg_of(bf16 + ["training.num_epochs=2"]), str(tmp_path / "a"))
    second = run(cfg_of(bf16), str(tmp_path / "b"))
    assert [h["epoch"] for h in second["history"]] == [1, 2, 3, 4]  # epochs 3 and 4 trained here
    store = CheckpointStore(ckpt)
    emb, acc = store.read_partition("entity", 0).result()
    store.close()
    assert emb.dtype == jnp.bfloat16 and acc.dtype == np.float32
    got = second["eval"]["test"]["filtered"]["avg"]["mrr"]
    want = f32["eval"]["test"]["filtered"]["avg"]["mrr"]
    # 2 partitions, 4 epochs of the toy graph learn to 4-6x chance depending on the CPU's float
    # summation order (0.067 on an AVX-512 Xeon, chance 0.016): the bar is the float32 run's
    assert want > 3 * f32["chance_mrr"], want
    assert got > 0.85 * want and got > 3 * second["chance_mrr"], (got, want)


def _nan_loss(pos, neg, valid, margin):
    return jnp.full(pos.shape, jnp.nan)


def test_bfloat16_compute_learns_like_float32(tmp_path):
    """model.compute_dtype=bfloat16 (negatives scored with bfloat16 products): the default run
    learns, its test MRR within 10% of the float32 run's."""
    base = ["storage.save=false", "training.num_epochs=3"]
    f32 = run(cfg_of(base), str(tmp_path / "f32"))
    bf16 = run(cfg_of(base + ["model.compute_dtype=bfloat16"]), str(tmp_path / "bf16"))
    mrr = [m["eval"]["test"]["filtered"]["avg"]["mrr"] for m in (f32, bf16)]
    assert mrr[1] > 5 * bf16["chance_mrr"], mrr
    assert abs(mrr[1] - mrr[0]) < 0.1 * mrr[0], mrr
    # a different computation, by bfloat16 rounding (2^-8 relative per product), not another model:
    # the first epoch's mean losses differ, by well under 1%
    first = [m["history"][0]["loss"] for m in (f32, bf16)]
    assert 0 < abs(first[1] - first[0]) < 0.01 * first[0], first


def test_nan_loss_stops_and_keeps_last_checkpoint(tmp_path, monkeypatch):
    ckpt = str(tmp_path / "ckpt")
    cfg = cfg_of([f"storage.checkpoint_dir={ckpt}", "training.num_epochs=1"])
    run(cfg, str(tmp_path / "a"))
    before = CheckpointStore(ckpt)
    version, params = before.version, before.read_params()
    # the resumed run's loss (same name: a changed loss.name is refused on resume) turns NaN
    monkeypatch.setitem(LOSSES._items, cfg.loss.name, Loss(fn=_nan_loss))
    with pytest.raises(TrainingDiverged, match="non-finite loss"):
        run(cfg_of([f"storage.checkpoint_dir={ckpt}", "training.num_epochs=2"]), str(tmp_path / "b"))
    after = CheckpointStore(ckpt)
    assert after.version == version
    for k, v in after.read_params().items():
        assert (v == params[k]).all()


def test_evaluate_cli_matches_training(tmp_path, capsys):
    from jgraph.cli.evaluate import main

    m = run(cfg_of(["training.num_epochs=1"]), str(tmp_path))
    assert main([str(tmp_path), "--split", "valid", "--protocol", "filtered", "raw"]) == 0
    out = json.loads((tmp_path / "eval_valid.json").read_text())
    for proto in ("filtered",):
        assert out["eval"]["valid"][proto]["avg"]["mrr"] == pytest.approx(
            m["eval"]["valid"][proto]["avg"]["mrr"], rel=1e-6)
    assert "valid filtered avg" in capsys.readouterr().out


def test_real_data_umls(tmp_path, data_root):
    cfg = cfg_of([f"data.root={data_root}", "data.name=umls", "data.format=tsv", "data.path=UMLS",
                  "model.dimension=32", "training.num_epochs=10"])
    m = run(cfg, str(tmp_path))
    assert m["data"]["entities"]["entity"] == 135 and m["data"]["relations"] == 46
    # 135 candidates: chance 0.041; 10 epochs reach ~0.5-0.7 (the bar: 7x chance, about 0.3)
    assert m["eval"]["test"]["filtered"]["avg"]["mrr"] > 7 * m["chance_mrr"]
