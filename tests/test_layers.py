"""The import rules of docs/design.md, checked on the source: every module under jgraph/ and models/ is
parsed with `ast` (imports inside functions count too), and the import graph must have no cycles
(imports under `if TYPE_CHECKING:` never run, so they cannot close one), no import from a lower
layer to a higher one (type-only imports included), and no module over MAX_LINES lines. LAYERS
below is the one rank table; docs/design.md points here."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("jgraph", "models")
MAX_LINES = 450

# Layers, lowest first. A module belongs to the longest prefix listed; it may import its own layer
# and the layers below it, never one above. `jgraph` alone is the package's __init__ (the public API).
LAYERS: list[tuple[str, ...]] = [
    ("jgraph.config", "jgraph.validation", "jgraph.memory", "jgraph.errors"),  # base layer
    ("jgraph.plan",),  # partitions, buckets, residency swaps, batches
    ("jgraph.core",),  # registry, scorers, model, negatives, optimizer, metrics, the jitted step
    ("models",),  # operators, comparators, losses, regularizers registered by name
    ("jgraph.storage",),  # TensorStore: kv, shards, checkpoints, edges
    ("jgraph.data",),  # readers, dictionaries, datasets, importer, downloads
    # a model and its state from a config; full ranking; a run's name mapping; rows read out in id order
    ("jgraph.assembly", "jgraph.ranking", "jgraph.mapping", "jgraph.readout"),
    ("jgraph.trained", "jgraph.pbg"),  # a trained run opened for read-out; PBG configs and runs
    ("jgraph.train",),  # the training job
    ("jgraph.cli", "jgraph.lab", "jgraph.api", "jgraph"),  # commands, experiment tools, public API
]


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the packages (a package is its __init__)."""
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def exempt(module: str) -> bool:
    """`python -m` entry points (__main__) may reach anywhere: nothing imports them."""
    return module.rsplit(".", 1)[-1] == "__main__"


def rank(module: str) -> int:
    best, best_len = None, -1
    for i, names in enumerate(LAYERS):
        for name in names:
            if (module == name or module.startswith(name + ".")) and len(name) > best_len:
                best, best_len = i, len(name)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add its package to LAYERS in tests/test_layers.py")
    return best


def type_checking_nodes(tree: ast.AST) -> set[int]:
    """ids of the nodes inside `if TYPE_CHECKING:` blocks (imports for annotations only)."""
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                inside.update(id(n) for n in ast.walk(child))
    return inside


def imports_of(module: str, path: Path, modules: dict[str, Path], runtime_only: bool = False) -> set[str]:
    """The project modules `module` imports (an imported name that is a submodule counts as it);
    `runtime_only`: leaving out the imports under `if TYPE_CHECKING:`."""
    is_package = path.name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    targets: set[str] = set()

    def add(name: str) -> None:
        # `import a.b.c` / `from a.b import c`: the deepest project module named
        while name and name not in modules:
            name = name.rpartition(".")[0]
        if name and name != module:
            targets.add(name)

    tree = ast.parse(path.read_text(), str(path))
    skip = type_checking_nodes(tree) if runtime_only else set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                add(alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package
                for _ in range(node.level - 1):
                    base = base.rpartition(".")[0]
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            for alias in node.names:
                full = f"{base}.{alias.name}"
                add(full if full in modules else base)
    return targets


def import_graph(runtime_only: bool = False) -> dict[str, set[str]]:
    modules = module_files()
    return {m: imports_of(m, path, modules, runtime_only) for m, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_has_a_layer():
    for module in module_files():
        rank(module)


def test_no_import_cycles():
    graph = import_graph(runtime_only=True)
    found = cycles(graph)
    lines = []
    for component in found:
        members = set(component)
        edges = [f"{a} -> {b}" for a in component for b in sorted(graph[a]) if b in members]
        lines.append(f"  cycle among {', '.join(component)}: {'; '.join(edges)}")
    assert not found, "import cycles (move the shared piece into the lower module):\n" + "\n".join(lines)


def test_no_upward_imports():
    graph = import_graph()
    upward = [
        f"  {a} (layer {rank(a)}) imports {b} (layer {rank(b)})"
        for a in sorted(graph)
        if not exempt(a)
        for b in sorted(graph[a])
        if rank(b) > rank(a)
    ]
    assert not upward, "imports from a lower layer to a higher one (see LAYERS):\n" + "\n".join(upward)


def test_modules_are_small():
    long = [
        f"  {path.relative_to(ROOT)}: {n} lines"
        for path in module_files().values()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert not long, f"modules over {MAX_LINES} lines (split them by job):\n" + "\n".join(long)


def test_the_checker_sees_cycles_and_function_level_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("from typing import TYPE_CHECKING\nfrom . import b\n"
                      "def f():\n    from jgraph.train import run\n"
                      "if TYPE_CHECKING:\n    from jgraph.api import fit\n")
    modules = {"jgraph.x.m": source, "jgraph.x.b": source, "jgraph.train.run": source, "jgraph.api": source}
    assert imports_of("jgraph.x.m", source, modules) == {"jgraph.x.b", "jgraph.train.run", "jgraph.api"}
    assert imports_of("jgraph.x.m", source, modules, runtime_only=True) == {"jgraph.x.b", "jgraph.train.run"}
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert rank("jgraph.data.reader") > rank("jgraph.storage.kv") > rank("models.operators")
    assert rank("jgraph") == rank("jgraph.cli.train") == len(LAYERS) - 1
