"""A PyTorch-BigGraph config read without running it, and its jgraph equivalent.

PBG's config is a Python file whose `get_torchbiggraph_config()` returns a dict. Opening a file
someone sent must not run their code, so the file is parsed with `ast` and only a small subset is
evaluated: literals (numbers, strings, booleans, None, lists, tuples, dicts), `dict(...)`,
`ConfigSchema(...)` / `EntitySchema(...)` / `RelationSchema(...)` calls with keyword arguments
(read as dicts), unary minus, and names assigned earlier in the function (`config = dict(...)`;
`config["key"] = value` too). Anything else (a call, an import, a loop) is refused with its line.
The checkpoint's `config.json` (PBG writes one beside the checkpoint) is read as JSON.

`to_jgraph` maps the options that change scores or training one to one (pbg-reference §2) and
refuses what jgraph cannot reproduce: featurized types, a per-type dimension, an unknown operator
or comparator.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from jgraph.errors import UserError

SCHEMA_CALLS = ("dict", "ConfigSchema", "EntitySchema", "RelationSchema")
OPERATORS = ("none", "translation", "diagonal", "linear", "affine", "complex_diagonal")
COMPARATORS = ("dot", "cos", "l2", "squared_l2")
LOSSES = ("ranking", "logistic", "softmax")
BUCKET_ORDERS = ("random", "affinity", "inside_out", "outside_in")
# PBG's defaults where jgraph's differ or where the config may leave a key out (config.py)
DEFAULTS: dict[str, Any] = {
    "comparator": "cos", "global_emb": True, "bias": False, "max_norm": None, "init_scale": 1e-3,
    "loss_fn": "ranking", "margin": 0.1, "regularization_coef": 0.0, "regularizer": "N3",
    "dynamic_relations": False, "num_batch_negs": 50, "num_uniform_negs": 50,
    "disable_lhs_negs": False, "disable_rhs_negs": False, "lr": 1e-2, "relation_lr": None,
    "num_epochs": 1, "batch_size": 1000, "bucket_order": "inside_out", "num_edge_chunks": None,
    "eval_num_batch_negs": 1000, "eval_num_uniform_negs": 1000,
}


class PbgError(UserError, ValueError):
    """A PBG config or checkpoint jgraph cannot import; the message names the file and value."""


class _Reader:
    """Evaluates the whitelisted subset of Python in one function body (see module docstring)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.names: dict[str, Any] = {}

    def refuse(self, node: ast.AST, what: str) -> PbgError:
        return PbgError(f"{self.path}:{getattr(node, 'lineno', '?')}: {what} is not read (the config "
                        "is parsed, never run: only literals, dict(...) and names assigned above)")

    def value(self, node: ast.AST) -> Any:
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            return [self.value(e) for e in node.elts]
        if isinstance(node, ast.Dict):
            if any(k is None for k in node.keys):
                return self._merged(node)
            return {self.value(k): self.value(v) for k, v in zip(node.keys, node.values, strict=True)}
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            v = self.value(node.operand)
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.Name):
            if node.id in self.names:
                return self.names[node.id]
            if node.id in ("True", "False", "None"):
                return {"True": True, "False": False, "None": None}[node.id]
            raise self.refuse(node, f"the name {node.id!r} (not assigned above)")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in SCHEMA_CALLS:
            out: dict[str, Any] = {}
            for a in node.args:
                if node.func.id != "dict" or len(node.args) > 1:
                    raise self.refuse(a, f"a positional argument of {node.func.id}()")
                base = self.value(a)
                if not isinstance(base, dict):
                    raise self.refuse(a, "dict() of something other than a dict")
                out.update(base)
            for kw in node.keywords:
                if kw.arg is None:
                    base = self.value(kw.value)
                    if not isinstance(base, dict):
                        raise self.refuse(kw.value, "** of something other than a dict")
                    out.update(base)
                else:
                    out[kw.arg] = self.value(kw.value)
            return out
        what = type(node).__name__
        if isinstance(node, ast.Call):
            what = f"the call {ast.unparse(node.func)}()"
        return self._raise(node, what)

    def _merged(self, node: ast.Dict) -> dict:
        out: dict[str, Any] = {}
        for k, v in zip(node.keys, node.values, strict=True):
            if k is None:
                base = self.value(v)
                if not isinstance(base, dict):
                    raise self.refuse(v, "** of something other than a dict")
                out.update(base)
            else:
                out[self.value(k)] = self.value(v)
        return out

    def _raise(self, node: ast.AST, what: str) -> Any:
        raise self.refuse(node, what)

    def body(self, stmts: list[ast.stmt]) -> Any:
        for s in stmts:
            if isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant):
                continue  # a docstring
            if isinstance(s, ast.Pass):
                continue
            if isinstance(s, ast.Assign) and len(s.targets) == 1:
                target = s.targets[0]
                if isinstance(target, ast.Name):
                    self.names[target.id] = self.value(s.value)
                    continue
                if (isinstance(target, ast.Subscript) and isinstance(target.value, ast.Name)
                        and isinstance(self.names.get(target.value.id), dict)):
                    self.names[target.value.id][self.value(target.slice)] = self.value(s.value)
                    continue
            if isinstance(s, ast.Return) and s.value is not None:
                return self.value(s.value)
            raise self.refuse(s, f"the statement `{ast.unparse(s).splitlines()[0][:60]}`")
        raise PbgError(f"{self.path}: get_torchbiggraph_config() returns nothing")


def read_config(path: str | Path) -> dict[str, Any]:
    """The dict a PBG config file describes: a Python file's get_torchbiggraph_config() (parsed,
    never run) or a JSON file (PBG's checkpoint config.json)."""
    p = Path(path)
    if not p.is_file():
        raise PbgError(f"{p}: no such PBG config file")
    text = p.read_text(encoding="utf-8", errors="replace")
    if p.suffix == ".json":
        try:
            cfg = json.loads(text)
        except json.JSONDecodeError as e:
            raise PbgError(f"{p}: not JSON ({e})") from None
    else:
        try:
            tree = ast.parse(text, filename=str(p))
        except SyntaxError as e:
            raise PbgError(f"{p}:{e.lineno}: not Python ({e.msg})") from None
        funcs = [n for n in tree.body if isinstance(n, ast.FunctionDef)
                 and n.name == "get_torchbiggraph_config"]
        if not funcs:
            raise PbgError(f"{p}: no get_torchbiggraph_config() function (not a PBG config)")
        cfg = _Reader(str(p)).body(funcs[0].body)
    if not isinstance(cfg, dict):
        raise PbgError(f"{p}: the config is a {type(cfg).__name__}, not a dict")
    for key in ("entities", "relations", "dimension"):
        if key not in cfg:
            raise PbgError(f"{p}: the config has no {key!r} (PBG requires it)")
    return cfg


def option(cfg: dict[str, Any], key: str) -> Any:
    """A config value, with PBG's default where the config leaves it out."""
    return cfg.get(key, DEFAULTS.get(key))


def check_importable(cfg: dict[str, Any], where: str) -> None:
    """Refuse, with one line, what jgraph cannot reproduce exactly."""
    dim = cfg["dimension"]
    if not isinstance(cfg["entities"], dict) or not cfg["entities"]:
        raise PbgError(f"{where}: entities must be a non-empty dict")
    for name, e in cfg["entities"].items():
        if e.get("featurized"):
            raise PbgError(f"{where}: entity type {name!r} is featurized; importing featurized types "
                           "is not supported")
        if e.get("dimension") not in (None, dim):
            raise PbgError(f"{where}: entity type {name!r} has dimension {e['dimension']} (the model's is "
                           f"{dim}); jgraph has one dimension for every type")
        if not isinstance(e.get("num_partitions"), int) or e["num_partitions"] < 1:
            raise PbgError(f"{where}: entity type {name!r}: num_partitions must be a positive int")
    if not isinstance(cfg["relations"], list) or not cfg["relations"]:
        raise PbgError(f"{where}: relations must be a non-empty list")
    if option(cfg, "dynamic_relations") and len(cfg["relations"]) != 1:
        raise PbgError(f"{where}: dynamic_relations with {len(cfg['relations'])} relation entries "
                       "(PBG needs exactly one)")
    for i, r in enumerate(cfg["relations"]):
        op = r.get("operator", "none")
        if op not in OPERATORS:
            raise PbgError(f"{where}: relation {r.get('name', i)!r}: operator {op!r} has no jgraph "
                           f"counterpart (supported: {', '.join(OPERATORS)})")
        for side in ("lhs", "rhs"):
            if r.get(side) not in cfg["entities"]:
                raise PbgError(f"{where}: relation {r.get('name', i)!r}: {side} type {r.get(side)!r} "
                               "is not in entities")
    ops = {r.get("operator", "none") for r in cfg["relations"]}
    if "complex_diagonal" in ops and len(ops) > 1:
        raise PbgError(f"{where}: complex_diagonal mixed with {sorted(ops - {'complex_diagonal'})} "
                       "(a jgraph run's embeddings are complex for every relation or none)")
    if "complex_diagonal" in ops and dim % 2:
        raise PbgError(f"{where}: complex_diagonal needs an even dimension, got {dim}")
    checks = (("comparator", COMPARATORS), ("loss_fn", LOSSES), ("bucket_order", BUCKET_ORDERS))
    for key, allowed in checks:
        v = option(cfg, key)
        if v not in allowed:
            raise PbgError(f"{where}: {key} {v!r} has no jgraph counterpart "
                           f"(supported: {', '.join(allowed)})")
    reg = option(cfg, "regularizer")
    if option(cfg, "regularization_coef") and str(reg).lower() != "n3":
        raise PbgError(f"{where}: regularizer {reg!r} has no jgraph counterpart (supported: N3)")
    negs = {bool(r.get("all_negs", False)) for r in cfg["relations"]}
    if len(negs) > 1:
        raise PbgError(f"{where}: all_negs is set on some relations only (jgraph's negatives.all_negs "
                       "is one setting for the run)")


def to_jgraph(cfg: dict[str, Any], relations: list[dict[str, Any]], data: dict[str, Any]) -> dict[str, Any]:
    """jgraph's config (a dict for config.to_config) of a checked PBG config; `relations`: one
    {name, lhs, rhs, weight, operator} per relation id (the dynamic ones expanded); `data`: the
    `data` section (where the imported edges are)."""
    dynamic = bool(option(cfg, "dynamic_relations"))
    template = cfg["relations"][0]
    relation_lr = option(cfg, "relation_lr")
    chunks = option(cfg, "num_edge_chunks")
    return {
        "data": data,
        "model": {
            "name": "pbg", "operator": template.get("operator", "none") if dynamic else "none",
            "comparator": option(cfg, "comparator"), "dimension": int(cfg["dimension"]),
            "bias": bool(option(cfg, "bias")), "init_scale": float(option(cfg, "init_scale")),
            "max_norm": None if option(cfg, "max_norm") is None else float(option(cfg, "max_norm")),
            "global_emb": bool(option(cfg, "global_emb")), "reciprocal": dynamic,
            "regularizer": "n3", "regularization_coef": float(option(cfg, "regularization_coef") or 0.0),
            # scores exactly as PBG's: no read-out shift of partitions (PBG has none)
            "center_partitions": False,
        },
        "loss": {"name": option(cfg, "loss_fn"), "margin": float(option(cfg, "margin"))},
        "negatives": {
            "num_batch_negs": int(option(cfg, "num_batch_negs")),
            "num_uniform_negs": int(option(cfg, "num_uniform_negs")),
            "all_negs": bool(template.get("all_negs", False)),
            "disable_lhs_negs": bool(option(cfg, "disable_lhs_negs")),
            "disable_rhs_negs": bool(option(cfg, "disable_rhs_negs")),
            "self_negative": False,  # PBG has no such negative
        },
        "optimizer": {"lr": float(option(cfg, "lr")),
                      "relation_lr": None if relation_lr is None else float(relation_lr)},
        "training": {"num_epochs": int(option(cfg, "num_epochs")),
                     "batch_size": int(option(cfg, "batch_size")),
                     "num_edge_chunks": int(chunks) if chunks else 1},
        "eval": {"num_batch_negs": int(option(cfg, "eval_num_batch_negs") or 1000),
                 "num_uniform_negs": int(option(cfg, "eval_num_uniform_negs") or 1000)},
        "storage": {"bucket_order": option(cfg, "bucket_order")},
        "entities": {t: {"num_partitions": int(e["num_partitions"])} for t, e in cfg["entities"].items()},
        "relations": relations,
        "experiment": "pbg_import",
    }
