"""`jgraph import-pbg CONFIG.py CHECKPOINT_DIR --out RUN`: a PyTorch-BigGraph run as a jgraph run.

    jgraph import-pbg fb15k_config_cpu.py model/fb15k --out runs/pbg_fb15k
    jgraph import-pbg config.py model/ --out RUN --entity-path data/FB15k
    jgraph import-pbg config.py model/ --out RUN --edge-paths train_p test_p --splits train test
    jgraph import-pbg config.py model/ --out RUN --no-edges

CONFIG.py is PBG's config (its get_torchbiggraph_config() is parsed, never run; PBG's config.json
works too). The entity counts and names come from the config's entity_path (or --entity-path), the
edges for `evaluate` from its edge_paths (or --edge-paths; the first is train, then valid, test
unless --splits names them). Then `jgraph evaluate|predict|export|neighbors RUN` work on RUN, and
`storage.init_path=RUN` warm-starts a jgraph run from it. Needs h5py (pip install 'jgraph[pbg]').
"""

from __future__ import annotations

import json
import logging
import sys

from jgraph.cli.main import run_command
from jgraph.errors import command_parser


def main(argv: list[str] | None = None) -> int:
    p = command_parser("jgraph import-pbg", __doc__)
    p.add_argument("config", help="PBG config file (.py with get_torchbiggraph_config(), or config.json)")
    p.add_argument("checkpoint", help="PBG checkpoint directory (checkpoint_path)")
    p.add_argument("--out", required=True, help="the jgraph run directory to write (new)")
    p.add_argument("--entity-path", default=None, help="PBG entity path (default: the config's)")
    p.add_argument("--edge-paths", nargs="+", default=None, help="PBG edge paths (default: the config's)")
    p.add_argument("--splits", nargs="+", default=None, help="split name of each edge path")
    p.add_argument("--no-edges", action="store_true", help="import no edges (the run is not evaluable)")
    p.add_argument("--seed", type=int, default=0, help="jgraph's partition seed (training.seed)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("jax").setLevel(logging.WARNING)
    from jgraph.pbg.importer import import_pbg

    res = import_pbg(args.config, args.checkpoint, args.out, args.entity_path,
                     [] if args.no_edges else args.edge_paths, args.splits, args.seed)
    print(json.dumps(res))
    return 0


if __name__ == "__main__":
    sys.exit(run_command("jgraph import-pbg", main))
