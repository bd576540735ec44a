"""`jgraph train` / `python -m jgraph.train`: the Hydra command line over `jgraph.train.run.run`.

    jgraph train                                    # built-in generated graph, < 1 min on 2 cores
    jgraph train +experiment=fb15k237               # a recipe from jgraph/conf/experiment/
    jgraph train +experiment=fb15k237 data.path=/data/mygraph   # the recipe on your own folder of TSVs
    jgraph train -m model.dimension=100,200 optimizer.lr=0.05,0.1   # a sweep

Returns the validation MRR (`objective`) so optimizing sweepers can maximise it. A user's mistake
(unknown key or preset, missing data, bad value) is one line on stderr and exit status 2; a diverged
run is one logged line and exit status 1; no traceback.
"""

from __future__ import annotations

import difflib
import logging
import os
import sys
from dataclasses import fields, is_dataclass

from jgraph.config import CONF_DIR, TrainConfig, register_configs, unknown_keys_message
from jgraph.errors import ConfigError

log = logging.getLogger("jgraph")


def _check_key(key: str) -> None:
    """ConfigError for a `key=value` override whose key the schema lacks (instead of Hydra's
    advice to add it with `+`, which then fails as an unknown key)."""
    node: object = TrainConfig
    for part in key.split("."):
        if not is_dataclass(node):
            return  # a dict or list field (entities.<type>, relations): its keys are the user's
        by_name = {f.name: f for f in fields(node)}
        if part not in by_name:
            from dataclasses import asdict

            raise ConfigError(unknown_keys_message([key], asdict(TrainConfig())))
        factory = by_name[part].default_factory
        node = factory() if callable(factory) else None  # a nested section, or a leaf


def _check_preset(group: str, value: str) -> None:
    """ConfigError listing close matches for a preset that jgraph/conf/<group>/ does not have."""
    names = sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))
    if value not in names and not value.endswith(".yaml"):
        like = difflib.get_close_matches(value, names, 3, 0.5)
        raise ConfigError(f"{group}={value}: no such preset in {CONF_DIR / group}"
                          + (f" (did you mean {', '.join(like)}?)" if like else "")
                          + f"; presets: {', '.join(names)}")


def prepare_overrides(overrides: list[str]) -> list[str]:
    """Check the keys and presets of command-line overrides, and name a run pointed at a folder
    (`data.path=...` without `data.name=`) after that folder. Hydra flags pass through."""
    out = list(overrides)
    keys = {}
    for o in overrides:
        if o.startswith("-") or "=" not in o:
            continue
        key, value = o.split("=", 1)
        bare = key.lstrip("+~")
        if bare.startswith("hydra.") or bare == "hydra" or "@" in bare:
            continue
        keys[bare] = value
        if (CONF_DIR / bare).is_dir():
            if "," not in value:
                _check_preset(bare, value)
        elif not key.startswith(("+", "~")):
            _check_key(bare)
    if "data.path" in keys and "data.name" not in keys and keys["data.path"].strip("/"):
        folder = os.path.basename(os.path.normpath(keys["data.path"]))
        if folder and "," not in folder and not folder.startswith("$"):
            hint = (f"The folder comes from data.path={keys['data.path']}: put the dataset's files "
                    "there (data.train, data.valid, data.test name them).").replace("'", "")
            out += [f"data.name='{folder}'", f"data.download_hint='{hint}'"]
    return out


def compose_config(overrides: list[str] | tuple[str, ...] = ()) -> TrainConfig:
    """The validated TrainConfig of jgraph/conf/train.yaml with command-line overrides (checked and
    completed by `prepare_overrides`); a mistake is a ConfigError naming the key or value."""
    from hydra import compose, initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    from jgraph.config import to_config
    from jgraph.validation import validate

    register_configs()
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base=None):
            raw = compose(config_name="train", overrides=prepare_overrides(list(overrides)))
    except (HydraException, OmegaConfBaseException) as e:
        text = str(e) + (f": {e.__cause__}" if e.__cause__ is not None else "")
        raise ConfigError(" ".join(text.split("full_key:")[0].split())) from None
    cfg = to_config(raw)
    validate(cfg)
    return cfg


def main() -> None:
    register_configs()
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from jgraph.errors import TrainingDiverged, UserError

    prog = sys.argv[0] if sys.argv and not sys.argv[0].endswith(".py") else "python -m jgraph.train"
    try:  # before JAX is imported: a typo or an impossible value fails in a moment
        if not any(a.startswith("-") for a in sys.argv[1:]):  # no Hydra flags (-m, --cfg, -cn ...)
            compose_config([a for a in sys.argv[1:] if not a.lstrip("+~").startswith("hydra")])
        sys.argv[1:] = prepare_overrides(sys.argv[1:])
    except UserError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)
    from jgraph.core.metrics import objective
    from jgraph.train.run import run

    @hydra.main(config_path=str(CONF_DIR), config_name="train", version_base=None)
    def main(cfg) -> float:
        from jgraph.train.recipe import given_keys

        out = HydraConfig.get().runtime.output_dir
        try:  # keys set on the command line (or by a sweeper) are kept by a recipe
            return objective(run(cfg, out, given_keys(list(HydraConfig.get().overrides.task))))
        except (UserError, TrainingDiverged) as e:
            # a user's mistake or a diverged run: the message says what and where; no traceback
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            print(f"{prog}: error: {type(e).__name__}: {e}", file=sys.stderr)
            sys.exit(1 if isinstance(e, TrainingDiverged) else 2)

    main()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
