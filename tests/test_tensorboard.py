"""TensorBoard event files: every epoch's numbers and the final evaluation, readable back."""

from __future__ import annotations

import struct

import pytest
from helpers import cfg_of
from tensorboardX.proto import event_pb2  # in the test extra

from jgraph.train.events import EventLog
from jgraph.train.run import run

# trains models / runs subprocesses end to end: outside the quick tier (-m 'not slow and not integration')
pytestmark = pytest.mark.integration


def read_scalars(directory) -> dict[str, list[tuple[int, float]]]:
    """{tag: [(step, value)]} from the TFRecord event files in `directory`."""
    out: dict[str, list[tuple[int, float]]] = {}
    for path in sorted(directory.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        pos = 0
        while pos < len(data):  # record: u64 length, u32 crc, payload, u32 crc
            (n,) = struct.unpack("<Q", data[pos:pos + 8])
            event = event_pb2.Event.FromString(data[pos + 12:pos + 12 + n])
            pos += 16 + n
            for v in event.summary.value:
                out.setdefault(v.tag, []).append((event.step, v.simple_value))
    return out


def test_run_writes_epochs_and_final_evaluation(tmp_path):
    m = run(cfg_of(["training.tensorboard=true", "training.num_epochs=2", "eval.every_epochs=1"]),
            str(tmp_path))
    scalars = read_scalars(tmp_path / "tensorboard")
    assert [s for s, _ in scalars["train/loss"]] == [1, 2]
    assert [v for _, v in scalars["train/loss"]] == pytest.approx([h["loss"] for h in m["history"]])
    assert [v for _, v in scalars["train/valid_mrr"]] == pytest.approx([h["valid_mrr"] for h in m["history"]])
    assert scalars["test/filtered/mrr"] == [(2, pytest.approx(m["eval"]["test"]["filtered"]["avg"]["mrr"]))]
    assert "test/filtered/count" not in scalars


def test_off_by_default_and_disabled_log_writes_nothing(tmp_path, monkeypatch):
    run(cfg_of(["training.num_epochs=1", "eval.splits=[]"]), str(tmp_path / "run"))
    assert not (tmp_path / "run" / "tensorboard").exists()
    assert not list(tmp_path.rglob("events.out.tfevents*"))
    # a disabled log takes every call and writes nowhere (tensorboardX's default is ./runs/)
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    log = EventLog(None)
    log.epoch({"epoch": 1, "loss": 1.0})
    log.evaluation({"test": {"filtered": {"avg": {"mrr": 0.5}}}}, 1)
    log.close()
    assert list(cwd.rglob("*")) == []
