"""Issue 30, knowledge graphs: the 1-vs-all mode (negatives.mode=all|auto), the query's own entity
weighted as a negative (negatives.self_weight), training.time_budget_minutes and the default
recipe (`recipe: kg`, jgraph/train/recipe.py)."""

from __future__ import annotations

import json

import jax.numpy as jnp
import numpy as np
import pytest
from helpers import model_of

from jgraph.assembly import ALL_NEGATIVES_MAX_ROWS, negatives_mode
from jgraph.core.model import Batch, Layout
from jgraph.core.step import NegativeSpec, batch_loss
from jgraph.train.recipe import GraphStats, apply_recipe, given_keys, kg_recipe
from jgraph.train.trainer import next_epoch_over

K, D, R = 7, 6, 2  # entities, dimension (3 complex coordinates), relations


def _complex(x: np.ndarray, re: np.ndarray, im: np.ndarray) -> np.ndarray:
    h = x.shape[-1] // 2
    a, b = x[..., :h], x[..., h:]
    return np.concatenate([a * re - b * im, a * im + b * re], axis=-1)


def _reference_loss(table, params, lhs, rel, rhs, self_weight):
    """float64 numpy: ComplEx with reciprocal relations, cross-entropy of each side's positive
    against every entity (the positive once), the query's own entity's logit + log(self_weight)."""
    total = 0.0
    for h, r, t in zip(lhs, rel, rhs, strict=True):
        # a head query (?, r, t) as (t, r^-1, ?): the "rhs" operator on t; a tail query the "lhs" on h
        for fixed, answer, op in ((t, h, "rhs"), (h, t, "lhs")):
            p = params[op]["complex_diagonal"]
            q = _complex(table[fixed], p["real"][r], p["imag"][r])
            logits = table @ q  # [K] every entity as the replaced side
            own = fixed
            logits = logits + np.where((np.arange(K) == own) & (own != answer), np.log(self_weight), 0.0)
            lse = np.log(np.sum(np.exp(logits - logits.max()))) + logits.max()
            total += lse - logits[answer]
    return total


@pytest.mark.parametrize("self_weight,warmup,step,effective", [
    (1.0, 0, None, 1.0), (7.0, 0, None, 7.0), (7.0, 4, 2, 7.0 ** 0.5), (7.0, 4, 9, 7.0)])
def test_all_negatives_loss_matches_numpy(self_weight, warmup, step, effective):
    """negatives.mode=all: the batch loss is the 1-vs-all cross-entropy of both sides over every
    entity (a numpy float64 reference), with the own entity counting self_weight times (its log
    ramped up over `warmup` batches: half of it after 2 of 4)."""
    rng = np.random.default_rng(3)
    model = model_of(dimension=D, operator_of_relation=["complex_diagonal"] * R,
                     relation_types=np.zeros((R, 2)), loss="softmax", reciprocal=True)
    params = {side: {"complex_diagonal": {k: rng.standard_normal((R, D // 2)).astype(np.float32)
                                          for k in ("real", "imag")}} for side in ("lhs", "rhs")}
    table = rng.standard_normal((K, D)).astype(np.float32)
    lhs = np.array([[0, 3, 5], [2, 2, 6]], np.int32)  # 2 chunks of 3 positives; (6, 1, 6) a loop
    rhs = np.array([[1, 4, 5], [0, 3, 6]], np.int32)
    rel = np.array([[0, 1, 0], [1, 0, 1]], np.int32)
    batch = Batch(jnp.asarray(lhs), jnp.asarray(rhs), jnp.asarray(rel), jnp.ones((2, 3), jnp.float32))
    layout = Layout(jnp.zeros((1, 2), jnp.int32), jnp.full((1, 2), K, jnp.int32))
    neg = NegativeSpec(num_uniform=0, use_batch=True, all_negs=True, sides=(True, True),
                       self_weight=self_weight, self_warmup=warmup)
    jparams = {s: {"complex_diagonal": {k: jnp.asarray(v) for k, v in p["complex_diagonal"].items()}}
               for s, p in params.items()}
    got, stats = batch_loss(model, neg, jparams, jnp.asarray(table), batch, layout, K, 1,
                            step=None if step is None else jnp.int32(step))
    want = _reference_loss(table.astype(np.float64), params, lhs.ravel(), rel.ravel(), rhs.ravel(),
                           effective)
    np.testing.assert_allclose(float(got), want, rtol=2e-5)
    assert float(stats["count"]) == 6


def test_auto_mode_by_graph_size():
    """auto: 1-vs-all on one partition up to ALL_NEGATIVES_MAX_ROWS rows, sampled above or with
    partitions; all and PBG's all_negs are all; sampled stays sampled."""
    assert negatives_mode("auto", False, 14_541, 1) == "all"
    assert negatives_mode("auto", False, ALL_NEGATIVES_MAX_ROWS, 1) == "all"
    assert negatives_mode("auto", False, ALL_NEGATIVES_MAX_ROWS + 1, 1) == "sampled"
    assert negatives_mode("auto", False, 1000, 4) == "sampled"
    assert negatives_mode("sampled", False, 100, 1) == "sampled"
    assert negatives_mode("all", False, 10**7, 8) == "all"
    assert negatives_mode("sampled", True, 10**7, 1) == "all"


FB15K237 = GraphStats(entities=14_541, relations=237, edges=272_115)
UMLS = GraphStats(entities=135, relations=46, edges=5_216)
HUGE = GraphStats(entities=5_000_000, relations=1000, edges=100_000_000, rows=2_500_000, partitions=4)


def test_kg_recipe_choices():
    """The recipe's choices follow the graph's size and the budget."""
    fb = kg_recipe(FB15K237, 20)
    assert fb["negatives.mode"] == "all" and fb["training.batch_size"] == 1000
    assert fb["model.dimension"] == 400  # the largest with 12 epochs in 20 minutes
    assert 12 <= fb["training.num_epochs"] < 24
    umls = kg_recipe(UMLS, 20)
    assert umls["negatives.mode"] == "all" and umls["training.batch_size"] == 100
    assert umls["model.dimension"] == 400 and umls["training.num_epochs"] == 200
    # the own entity weighs entities / 3 negatives (at most 50), ramped over 40 epochs of 53 batches
    assert umls["negatives.self_weight"] == 45 and umls["negatives.self_weight_warmup"] == 40 * 53
    assert kg_recipe(GraphStats(14, 55, 1592), 20)["negatives.self_weight"] == 5
    assert fb["negatives.self_weight"] == 50
    big = kg_recipe(HUGE, 60)
    assert big["negatives.mode"] == "sampled" and big["negatives.num_uniform_negs"] == 1000
    assert "negatives.self_weight" not in big  # 1-vs-all only
    assert big["training.num_epochs"] >= 1 and big["model.dimension"] <= 64
    # more time: never a smaller model or fewer epochs; the periodic evaluation ~10 times a run
    more = kg_recipe(FB15K237, 200)
    assert more["model.dimension"] >= fb["model.dimension"]
    assert kg_recipe(FB15K237, 5)["model.dimension"] < fb["model.dimension"]
    for r in (fb, umls, big, more):
        assert r["training.num_epochs"] // r["eval.every_epochs"] in range(5, 11) or \
            r["training.num_epochs"] < 10
        assert r["training.batch_size"] % 50 == 0


def test_apply_recipe_keeps_the_given_keys():
    from jgraph.config import TrainConfig

    keys = given_keys(["+experiment=kg", "model.dimension=64", "hydra.run.dir=x", "--multirun",
                       "~eval.max_edges", "+training.seed=3"])
    assert keys == {"experiment", "model.dimension", "training.seed"}
    cfg = TrainConfig()
    applied = apply_recipe(cfg, kg_recipe(UMLS, 20), keys)
    assert cfg.model.dimension == 100 and "model.dimension=400" not in applied  # kept
    assert cfg.negatives.mode == "all" and cfg.training.batch_size == 100
    assert "training.num_epochs=200" in applied


def test_next_epoch_over():
    assert not next_epoch_over(0.0, [], 1e-9)  # the first epoch always starts
    assert not next_epoch_over(50.0, [20.0, 30.0], 75.0)  # 50 + 25 = 75: ends within
    assert next_epoch_over(50.1, [20.0, 30.0], 75.0)


@pytest.mark.integration
def test_time_budget_stops_after_a_committed_epoch(tmp_path):
    """A budget smaller than an epoch: training stops after the first epoch, which is committed,
    and the final evaluation runs (toy graph, about 10 s)."""
    from jgraph.api import fit

    out = tmp_path / "run"
    res = fit(["+debug=tiny", "training.num_epochs=5", "training.time_budget_minutes=0.00001"], out,
              log=False)
    m = res.metrics
    assert len(m["history"]) == 1 and m["time_budget"]["epochs"] == 1
    assert m["eval"]["test"]["filtered"]["avg"]["mrr"] > 0
    manifest = json.loads((out / "checkpoint" / "checkpoint.json").read_text())
    assert manifest["progress"]["epoch"] == 1
