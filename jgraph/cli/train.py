"""`python -m jgraph.train` / `jgraph train`: the Hydra command line over `jgraph.train.run.run`.

    python -m jgraph.train                          # built-in generated graph, < 1 min on 2 cores
    python -m jgraph.train +experiment=fb15k237     # a recipe from jgraph/conf/experiment/
    python -m jgraph.train -m model.dimension=100,200 optimizer.lr=0.05,0.1   # a sweep

Returns the validation MRR (`objective`) so optimizing sweepers can maximise it; a user's mistake
or a diverged run is one logged line and exit status 1, no traceback.
"""

from __future__ import annotations

import logging
import os
import sys

from jgraph.config import CONF_DIR, register_configs
from jgraph.core.metrics import objective
from jgraph.train.run import run

log = logging.getLogger("jgraph")

register_configs()


def main() -> None:
    import hydra
    from hydra.core.hydra_config import HydraConfig

    from jgraph.errors import DataError, TrainingDiverged
    from jgraph.storage.checkpoint import CheckpointError
    from jgraph.train.cluster import ClusterError

    @hydra.main(config_path=str(CONF_DIR), config_name="train", version_base=None)
    def main(cfg) -> float:
        out = HydraConfig.get().runtime.output_dir
        try:
            return objective(run(cfg, out))
        except (DataError, CheckpointError, TrainingDiverged, ClusterError, ValueError, KeyError) as e:
            # a user's mistake or a diverged run: the message says what and where; no traceback
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            log.error("%s: %s", type(e).__name__, e)
            sys.exit(1)

    main()


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    main()
