"""`jgraph <command> ...`: one console command over the command modules (also `python -m jgraph`).

    jgraph train +experiment=fb15k237          jgraph evaluate RUN --split test
    jgraph predict RUN --head H --relation R   jgraph neighbors RUN --entity E
    jgraph export RUN --format npy --out DIR   jgraph import OUT --train edges.tsv.gz
    jgraph download fb15k237                   jgraph launch -n 2 -- [train overrides]

A command's module is imported only when it runs, so `jgraph --help` is quick. Every command turns
a user's mistake (`jgraph.errors.UserError`: a missing run, an unknown name, a bad option or path,
corrupt input) into one line on stderr and exit status 2; a traceback means a bug.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import os
import sys
from collections.abc import Callable

# name: (module, one-line help); each module has main(argv) -> int (train: Hydra's argv)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("jgraph.cli.train", "train a model: Hydra overrides (key=value, +experiment=NAME, -m sweeps)"),
    "evaluate": ("jgraph.cli.evaluate", "link-prediction metrics of a trained run on a split"),
    "predict": ("jgraph.cli.predict", "top-k tails of (head, relation, ?) or heads of (?, relation, tail)"),
    "neighbors": ("jgraph.cli.neighbors", "the k nearest entities of an entity"),
    "export": ("jgraph.cli.export", "write a run's embeddings as TSV, npy or Parquet"),
    "import": ("jgraph.cli.import_edges", "prepare edge files as a partitioned dataset (streaming)"),
    "import-pbg": ("jgraph.cli.import_pbg", "a PyTorch-BigGraph config + checkpoint as a jgraph run"),
    "download": ("jgraph.data.download", "download a benchmark dataset (fb15k237, wn18rr, ...)"),
    "launch": ("jgraph.cli.launch", "N training processes on this machine (distributed training)"),
    "node-classification": ("jgraph.cli.node_classification", "node classification on a run's embeddings"),
    "freebase": ("jgraph.data.freebase", "prepare the Freebase dump for training"),
    "plot": ("jgraph.lab.plot", "plot runs' learning curves"),
    "sweep-summary": ("jgraph.lab.sweep_summary", "summarize a Hydra sweep's runs"),
}


def run_arguments(p: argparse.ArgumentParser) -> None:
    """The arguments of every command that opens a trained run: the run, --set, --allow-plugin."""
    p.add_argument("run", help="run directory or checkpoint location")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                   help="config overrides, e.g. data.root=/data eval.ties=pessimistic")
    p.add_argument("--allow-plugin", action="append", default=[], metavar="MODULE",
                   help="import this plugin module the run names (only the installed `models` otherwise)")


def one_line(e: BaseException) -> str:
    """The message of a user error as one line (an OSError names its file)."""
    if isinstance(e, OSError) and e.filename is not None and e.strerror:
        return f"{e.filename}: {e.strerror}"
    text = str(e.args[0]) if isinstance(e, KeyError) and e.args else str(e)
    return " ".join(text.split())


def run_command(prog: str, fn: Callable[[], int | None]) -> int:
    """Run a command's main; a user's mistake is one line on stderr and exit status 2."""
    from jgraph.errors import UserError

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        return int(fn() or 0)
    except (UserError, FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError) as e:
        if os.environ.get("JGRAPH_TRACEBACK") == "1":
            raise
        print(f"{prog}: error: {one_line(e)}", file=sys.stderr)
        return 2
    except SystemExit as e:  # argparse's usage errors and --help, Hydra's exits
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return 130


def version() -> str:
    """The installed distribution's version (jgraph.__version__ when built)."""
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as dist_version

    try:
        return dist_version("jgraph")
    except PackageNotFoundError:
        return "unknown"


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = [f"usage: jgraph <command> [options]   (jgraph {version()}; jgraph <command> --help)", "",
             "commands:"]
    lines += [f"  {name:{width}s}  {text}" for name, (_, text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage(), file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    if argv[0] in ("-V", "--version"):
        print(f"jgraph {version()}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        like = difflib.get_close_matches(name, list(COMMANDS), 3, 0.5)
        print(f"jgraph: error: unknown command {name!r}" + (f" (did you mean {', '.join(like)}?)" if like
              else f"; commands: {', '.join(COMMANDS)}"), file=sys.stderr)
        return 2
    prog = f"jgraph {name}"
    module = importlib.import_module(COMMANDS[name][0])
    if name == "train":  # Hydra reads sys.argv itself
        sys.argv = [prog, *rest]
        return run_command(prog, module.main)
    return run_command(prog, lambda: module.main(rest))


if __name__ == "__main__":
    sys.exit(main())
