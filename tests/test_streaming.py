"""Large-graph paths that never hold more than one partition (jgraph/ranking.py, cli/evaluate.py,
cli/export.py): the streamed sampled evaluation gives the in-memory one's ranks exactly, the
per-partition export holds the in-memory export's rows, and a full ranking that would not fit is
refused in one line naming the sampled protocol."""

from __future__ import annotations

import numpy as np
import pytest

from jgraph.assembly import relation_groups
from jgraph.cli.evaluate import evaluate
from jgraph.cli.export import export
from jgraph.errors import OptionError
from jgraph.ranking import check_full_ranking_fits, sampled_ranking, streamed_sampled_ranking
from jgraph.trained import load_run, open_run

pytestmark = pytest.mark.integration  # reads the session's tiny trained run (helpers.tiny_run)


@pytest.mark.parametrize("negs", [(50, 50), (0, 40)])  # batch + uniform; PBG's uniform-only variant
def test_streamed_sampled_equals_in_memory(run_dir, negs) -> None:
    # rows as stored: the read-outs' centering shifts differ in the last bit (stored vs computed
    # partition means), which moves near-tied ranks of this barely trained model
    raw = ["model.center_partitions=false"]
    mem = load_run(str(run_dir), raw, with_data=True)
    ecfg = mem.cfg.eval
    ecfg.num_batch_negs, ecfg.num_uniform_negs = negs
    groups = relation_groups(mem.cfg, mem.ds)
    want = sampled_ranking(mem.model, mem.params, mem.emb, mem.offsets, mem.ds, "test", ecfg, groups)
    run = open_run(str(run_dir), raw)
    assert run.layout.types[0].num_partitions == 2
    reads = []

    def rows_of(t, p):
        reads.append(p)
        return run.partition(t, p)

    got = streamed_sampled_ranking(run.model, mem.params, run.layout, rows_of, mem.ds, "test", ecfg, groups)
    run.close()
    assert sorted(reads) == [0, 1]  # each partition read once
    for side in ("lhs", "rhs", "avg"):
        for k, v in want[side].items():
            assert got[side][k] == v, (side, k)
    assert want["avg"]["count"] > 100 and want["avg"]["mrr"] < 0.99


def test_cli_sampled_evaluation_streams(run_dir, monkeypatch) -> None:
    import jgraph.trained as trained

    res_mem = load_run(str(run_dir), ["model.center_partitions=false"], with_data=True)
    want = sampled_ranking(res_mem.model, res_mem.params, res_mem.emb, res_mem.offsets, res_mem.ds, "test",
                           res_mem.cfg.eval, relation_groups(res_mem.cfg, res_mem.ds))

    def no_gather(*a, **k):
        raise AssertionError("the sampled protocol gathered every partition")

    monkeypatch.setattr(trained, "load_run", no_gather)
    got = evaluate(str(run_dir), ["test"], ["sampled"], None, ["model.center_partitions=false"])
    assert got["eval"]["test"]["sampled"]["avg"]["mrr"] == want["avg"]["mrr"]


def test_full_ranking_that_would_not_fit_is_refused(run_dir, monkeypatch) -> None:
    with pytest.raises(OptionError, match="sampled") as e:
        check_full_ranking_fits([86_054_151], 100, available=24 << 30)  # Freebase86m on 24 GiB
    assert "\n" not in str(e.value) and "32.1 GiB" in str(e.value)
    check_full_ranking_fits([86_054_151], 100, available=80 << 30)  # fits: no error
    import jgraph.ranking as ranking

    monkeypatch.setattr(ranking, "_available_bytes", lambda: 10_000)  # the tiny run "does not fit"
    with pytest.raises(OptionError, match="--protocol sampled"):
        evaluate(str(run_dir), ["test"], ["filtered"], None, [])
    from jgraph.train.evaluation import gather_refused

    run = open_run(str(run_dir))
    run.close()
    assert "jgraph evaluate RUN --protocol sampled" in gather_refused(run.layout, run.cfg)
    monkeypatch.setattr(ranking, "_available_bytes", lambda: 1 << 40)
    assert gather_refused(run.layout, run.cfg) is None


def test_per_partition_export_holds_the_in_memory_rows(run_dir, tmp_path) -> None:
    import pyarrow.parquet as pq

    export(str(run_dir), "npy", str(tmp_path / "whole"))
    man = export(str(run_dir), "npy", str(tmp_path / "parts"), per_partition=True)
    whole = np.load(tmp_path / "whole" / "entity.npy")
    seen = np.zeros(len(whole), bool)
    for p in range(2):
        rows = np.load(tmp_path / "parts" / f"entity.p{p}.npy")
        ids = np.load(tmp_path / "parts" / f"entity.p{p}.ids.npy")
        np.testing.assert_array_equal(rows, whole[ids])
        seen[ids] = True
    assert seen.all() and "entity.p1.ids.npy" in man["files"]
    names = pq.read_table(tmp_path / "parts" / "entity_names.parquet").column("name").to_pylist()
    import json

    assert names == json.loads((tmp_path / "whole" / "entity_names.json").read_text())
    with pytest.raises(OptionError, match="per-partition"):
        export(str(run_dir), "tsv", str(tmp_path / "x"), per_partition=True)
