"""The Hydra tree composes against the typed schema; bad keys and values are clear errors."""

from __future__ import annotations

import pytest
from helpers import CONF, compose
from hydra.errors import ConfigCompositionException
from omegaconf.errors import ConfigKeyError, ValidationError

from jgraph.config import TrainConfig, to_config
from jgraph.validation import validate

EXPERIMENTS = sorted(p.stem for p in (CONF / "experiment").glob("*.yaml"))


_compose = compose


def test_default_composes_and_validates():
    cfg = to_config(_compose([]))
    assert isinstance(cfg, TrainConfig)
    assert cfg.data.format == "toy" and cfg.model.operator == "complex_diagonal"
    validate(cfg)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_every_experiment_composes(name):
    cfg = to_config(_compose([f"+experiment={name}"]))
    validate(cfg)
    assert cfg.experiment == name
    assert cfg.data.name != "toy", f"experiment {name} should name its dataset"


def test_experiments_exist():
    assert {"fb15k237", "blogcatalog", "fb15k", "livejournal", "freebase"} <= set(EXPERIMENTS)


@pytest.mark.parametrize("preset", ["transe", "distmult", "complex", "rescal", "dot"])
def test_model_presets(preset):
    cfg = to_config(_compose([f"model={preset}"]))
    validate(cfg)
    assert cfg.model.name == preset


def test_unknown_key_is_rejected():
    with pytest.raises((ConfigCompositionException, ConfigKeyError)) as e:
        _compose(["model.dimensoin=10"])
    assert "dimensoin" in str(e.value)


def test_unknown_top_level_key_is_rejected():
    with pytest.raises((ConfigCompositionException, ConfigKeyError, ValueError)) as e:
        to_config(_compose(["+lr=0.1"]))
    assert "lr" in str(e.value)


def test_wrong_type_is_rejected():
    with pytest.raises((ConfigCompositionException, ValidationError)) as e:
        _compose(["model.dimension=big"])
    assert "dimension" in str(e.value)


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["training.batch_size=1001"], "multiple of the chunk size"),
        (["negatives.disable_lhs_negs=true", "negatives.disable_rhs_negs=true"], "cannot both"),
        (["negatives.num_batch_negs=0", "negatives.num_uniform_negs=0"], "both 0"),
        (["eval.ties=random"], "eval.ties"),
        (["negatives.uniform_from=everywhere"], "uniform_from must be side or bucket"),
        (["model.embedding_dtype=float16"], "embedding_dtype must be float32 or bfloat16"),
        (["model.compute_dtype=float16"], "compute_dtype must be float32 or bfloat16"),
        (["training.row_update=scatter"], "row_update must be auto, sparse or dense"),
        (["eval.protocols=[full]"], "unknown protocol"),
        (["+relations=[{name: r0, lhs: user}]"], "entity type 'user'"),
    ],
)
def test_invalid_combinations(overrides, message):
    cfg = to_config(_compose(overrides))
    with pytest.raises(ValueError, match=message):
        validate(cfg)


def test_unknown_scorer_name_lists_the_known_ones(tmp_path):
    from jgraph.train.run import run

    cfg = to_config(_compose(["model.operator=cube"]))
    with pytest.raises(KeyError, match="unknown operator 'cube'; known: affine, complex_diagonal"):
        run(cfg, str(tmp_path))
    assert not (tmp_path / "metrics.jsonl").exists(), "the check must come before any work"
