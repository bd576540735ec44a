"""Every fenced bash command of README.md and docs/*.md, checked: the quick ones (QUICK, below) run
as written in an empty folder; every other one is parsed: its `python -m` module or `jgraph`
subcommand exists, its `+experiment=` / group presets exist, its `key=value` overrides are keys of
the config schema, its `--options` are options of its command, its files and pip extras exist.
Also: relative links and their #anchors resolve, python blocks compile, and the generated pages
(docs/benchmarks.md, the README's results table) are what benchmarks/docs_tables.py makes of the CSVs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import typing
from pathlib import Path

import pytest

from jgraph.config import TrainConfig

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
CONF = ROOT / "jgraph" / "conf"

# Commands that run in seconds, run exactly as the docs write them (in an empty folder; `python` is
# this interpreter, `jgraph` is `python -m jgraph`). A command added here must stay quick.
QUICK = [
    "python -m jgraph.train +debug=tiny",
    "jgraph --help",
    "python benchmarks/docs_tables.py --check",
]
# The set-up commands make a venv: CI runs the second one itself (it greps it from the README).
SETUP = [
    "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/python -m jgraph.train",
    "python3 -m venv .venv && .venv/bin/pip install -e '.[test]' && .venv/bin/ruff check . "
    "&& .venv/bin/pytest",
]
PYTHONS = {"python", "python3", ".venv/bin/python", "pbg/bin/python"}
PIPS = {"pip", ".venv/bin/pip", "pbg/bin/pip"}
OTHER_PROGRAMS = {"export", "pytest", ".venv/bin/pytest", ".venv/bin/ruff", "bash"}
TRAIN_MODULES = {"jgraph.train", "jgraph.cli.train"}
PLACEHOLDER = "..."  # "the rest of the command line" in the docs
FILE_SUFFIXES = {"h5", "json", "jsonl", "txt", "py", "yaml", "tsv", "csv", "gz", "npy", "parquet", "png"}


def fenced(page: Path, language: str) -> list[tuple[int, str]]:
    """(line number, text) of each ```language block of a page."""
    blocks, current, start = [], None, 0
    for i, line in enumerate(page.read_text().splitlines(), 1):
        if current is None and line.strip() == f"```{language}":
            current, start = [], i
        elif current is not None and line.strip() == "```":
            blocks.append((start, "\n".join(current)))
            current = None
        elif current is not None:
            current.append(line)
    return blocks


def bash_commands() -> list[tuple[str, str]]:
    """(where, command) for every command line of every bash block (continuations joined)."""
    found = []
    for page in PAGES:
        for start, block in fenced(page, "bash"):
            for command in block.replace("\\\n", " ").splitlines():
                command = " ".join(command.split())
                if command and not command.startswith("#"):
                    found.append((f"{page.relative_to(ROOT)}:{start}", command))
    return found


COMMANDS = bash_commands()


def words(command: str) -> list[str]:
    return shlex.split(command, comments=True)


def segments(command: str) -> list[list[str]]:
    """The simple commands of a line (split at && and |), without leading VAR=value assignments."""
    out, current = [], []
    for w in words(command) + ["&&"]:
        if w in ("&&", "|", ";"):
            while current and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", current[0]):
                current.pop(0)
            if current:
                out.append(current)
            current = []
        else:
            current.append(w)
    return out


def schema_has(path: list[str], cls: type = TrainConfig) -> bool:
    """Whether `a.b.c` is a key of the config schema (entities.<type>.* and dict keys allowed)."""
    if not path:
        return True
    hints = typing.get_type_hints(cls)
    if path[0] not in {f.name for f in dataclasses.fields(cls)}:
        return False
    kind = hints[path[0]]
    if typing.get_origin(kind) is dict:
        kind = typing.get_args(kind)[1]
        path = path[1:]  # the dict's key (an entity type) is free
    for arg in (kind, *typing.get_args(kind)):
        if dataclasses.is_dataclass(arg):
            return schema_has(path[1:], arg)
    return len(path) == 1


def check_overrides(args: list[str]) -> list[str]:
    problems = []
    for arg in args:
        if arg in (PLACEHOLDER, "-m", "--multirun", "--help", "-h", "--") or "=" not in arg:
            if not (arg.startswith("-") or arg == PLACEHOLDER):
                problems.append(f"not an override: {arg}")
            continue
        key, value = arg.split("=", 1)
        key = key.lstrip("+~")
        if (CONF / key).is_dir():  # a config group: +experiment=NAME, hydra/sweeper=NAME, data=NAME
            if not (CONF / key / f"{value}.yaml").exists():
                problems.append(f"no preset {key}/{value}.yaml")
        elif key.startswith("hydra."):
            continue
        elif not schema_has(key.split(".")):
            problems.append(f"unknown config key {key}")
    return problems


def check_options(module: str, args: list[str]) -> list[str]:
    spec = importlib.util.find_spec(module)
    source = Path(spec.origin).read_text()
    if "run_arguments(p)" in source:  # the options every run-opening command shares (cli/main.py)
        source += Path(importlib.util.find_spec("jgraph.cli.main").origin).read_text()
    return [f"{module} has no option {a}" for a in args
            if a.startswith("--") and len(a) > 2 and f'"{a.split("=")[0]}"' not in source]


def check_module(module: str, args: list[str]) -> list[str]:
    if importlib.util.find_spec(module) is None:
        return [f"no module {module}"]
    if module in TRAIN_MODULES:
        return check_overrides(args)
    problems = check_options(module, args)
    if module == "jgraph.cli.launch" and "--" in args:
        problems += check_overrides(args[args.index("--") + 1:])
    return problems


def check_segment(seg: list[str]) -> list[str]:
    program, args = seg[0], seg[1:]
    if program in PYTHONS:
        if args[:1] == ["-m"]:
            return check_module(args[1], args[2:]) if args[1].startswith("jgraph") else []
        return [] if (ROOT / args[0]).exists() else [f"no file {args[0]}"]
    if program == "jgraph":
        from jgraph.cli.main import COMMANDS as SUBCOMMANDS

        if not args or args[0].startswith("-"):
            return []
        if args[0] not in SUBCOMMANDS:
            return [f"no command jgraph {args[0]}"]
        return check_module(SUBCOMMANDS[args[0]][0], args[1:])
    if program in PIPS:
        section = (ROOT / "pyproject.toml").read_text().split("[project.optional-dependencies]")[1]
        extras = re.findall(r"^([\w-]+)\s*=", section.split("\n[")[0], flags=re.M)
        wanted = [e for a in args for m in re.findall(r"^\.\[(.*)\]$", a) for e in m.split(",")]
        return [f"no pip extra {e}" for e in wanted if e not in extras]
    if program == "bash":
        return [] if (ROOT / args[0]).exists() else [f"no file {args[0]}"]
    if program in OTHER_PROGRAMS:
        return []
    return [f"unknown program {program} (add it to tests/test_docs.py)"]


@pytest.mark.parametrize(("where", "command"), COMMANDS, ids=[f"{w} {c[:50]}" for w, c in COMMANDS])
def test_command_parses(where, command):
    problems = [p for seg in segments(command) for p in check_segment(seg)]
    assert not problems, f"{where}: {command}\n  " + "\n  ".join(problems)


def test_quick_and_setup_commands_are_in_the_docs():
    documented = {" ".join(words(c)) for _, c in COMMANDS} | {c for _, c in COMMANDS}
    missing = [c for c in QUICK + SETUP if c not in documented]
    assert not missing, f"listed in tests/test_docs.py but in no bash block: {missing}"
    readme = (ROOT / "README.md").read_text()
    assert all(c in readme for c in SETUP), "the README must keep both set-up commands as they are"


@pytest.mark.integration
@pytest.mark.parametrize("command", QUICK)
def test_quick_command_runs(command, tmp_path):
    argv = []
    for w in words(command):
        if w == "python":
            argv.append(sys.executable)
        elif w == "jgraph" and not argv:
            argv += [sys.executable, "-m", "jgraph"]
        else:
            argv.append(str(ROOT / w) if "/" in w and (ROOT / w).exists() else w)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JGRAPH_DATA": str(tmp_path / "data")}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout[-2000:] + done.stderr[-3000:]
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{output}"


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_resolve():
    problems = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            dest = (page.parent / file).resolve() if file else page
            if not dest.exists():
                problems.append(f"{page.relative_to(ROOT)}: {target} (no such file)")
            elif anchor and dest.suffix == ".md":
                anchors = {slug(h) for h in re.findall(r"^#+ (.*)$", dest.read_text(), flags=re.M)}
                if anchor not in anchors:
                    problems.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")
    assert not problems, "broken links:\n  " + "\n  ".join(problems)


def test_python_blocks_compile_and_use_the_public_api():
    import jgraph

    for page in PAGES:
        for start, block in fenced(page, "python"):
            compile(block, f"{page.name}:{start}", "exec")
            for name in re.findall(r"\bjgraph\.(\w+)", block):
                assert hasattr(jgraph, name), f"{page.name}:{start}: jgraph.{name} is not in the public API"


def test_readme_is_a_front_door():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 210, f"README.md has {len(lines)} lines: move detail to docs/"


def test_checker_parses_what_the_docs_write():
    assert segments("A=1 B=2 python -m x --k 3  # note") == [["python", "-m", "x", "--k", "3"]]
    assert check_overrides(["+experiment=fb15k237", "entities.entity.num_partitions=4", "data.toy.rank=2",
                            "hydra/sweeper=grid_small", "-m", "..."]) == []
    assert check_overrides(["+experiment=nope", "model.dimensions=3"]) == [
        "no preset experiment/nope.yaml", "unknown config key model.dimensions"]
    assert slug("Import (`benchmarks/import.py`)") == "import-benchmarksimportpy"


def test_config_keys_in_prose_exist():
    """Every `section.key` the pages name in backticks (outside code blocks) is a key of the schema."""
    sections = {f.name for f in dataclasses.fields(TrainConfig)}
    problems = []
    for page in PAGES:
        text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)
        for span in re.findall(r"`([^`\n]+)`", text):
            for token in span.split():
                key = token.split("=")[0].strip("+~,;()")
                parts = key.split(".")
                if len(parts) < 2 or parts[0] not in sections or re.search(r"[^\w.]", key):
                    continue
                if parts[-1] in FILE_SUFFIXES:  # a file name such as model.vN.h5
                    continue
                if not schema_has(parts):
                    problems.append(f"{page.relative_to(ROOT)}: {token}")
    assert not problems, "config keys the schema does not have:\n  " + "\n  ".join(sorted(set(problems)))


def test_every_preset_is_documented():
    """docs/training.md's config tree names every preset of jgraph/conf/ (the README the recipes)."""
    tree = (ROOT / "docs" / "training.md").read_text()
    readme = (ROOT / "README.md").read_text()
    groups = [g for g in sorted(CONF.iterdir()) if g.is_dir()]
    missing = [f"docs/training.md: {g.name}/{p.stem}" for g in groups for p in sorted(g.rglob("*.yaml"))
               if f"`{p.stem}`" not in tree]
    missing += [f"README.md: experiment/{p.stem}" for p in sorted((CONF / "experiment").glob("*.yaml"))
                if f"`{p.stem}`" not in readme]
    assert not missing, "presets the docs do not name:\n  " + "\n  ".join(missing)
