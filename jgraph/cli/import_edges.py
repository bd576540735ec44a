"""`python -m jgraph.cli.import_edges OUT --train FILE... [options]`: the streaming importer's command line.

The work is done by jgraph/data/importer.py (its docstring describes the passes, memory and the
staging folder). `import` is a Python keyword, so this module only runs with -m; code calls
`jgraph.data.importer.run_import(ImportSpec(...))`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from jgraph.cli.main import run_command
from jgraph.config import DEFAULT_ENTITY_TYPE
from jgraph.data.importer import ImportSpec, run_import
from jgraph.data.importer import __doc__ as IMPORTER_DOC
from jgraph.errors import DataError, OptionError, command_parser


def _parse_partitions(values: list[str]) -> dict[str, int]:
    out = {}
    for v in values:
        name, _, p = v.rpartition("=")
        try:
            out[name or "*"] = int(p)
        except ValueError:
            raise OptionError(f"--partitions {v!r}: expected [TYPE=]P, P a whole number") from None
    return out


def _delimiter(s: str | None) -> str | None:
    if s is None:
        return None
    return {"\\t": "\t", "tab": "\t", "space": " ", "comma": ","}.get(s, s)


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.cli.import_edges", IMPORTER_DOC)
    p.add_argument("out", help="the prepared dataset to write (train with data.format=prepared "
                   "data.root=<its folder> data.path=<its name>)")
    p.add_argument("--train", nargs="+", required=True, help="edge files (TSV/CSV, .gz, Parquet)")
    p.add_argument("--valid", nargs="+", default=[])
    p.add_argument("--test", nargs="+", default=[])
    p.add_argument("--columns", nargs="+", default=None,
                   help="role of each column: lhs rel rhs weight ignore (default by count: 2 = lhs rhs, "
                   "3 = lhs rel rhs, 4 = + weight), or role=name for Parquet")
    p.add_argument("--delimiter", default=None, help="default: tab (',' for .csv); \\t, tab, space")
    p.add_argument("--skip-rows", type=int, default=0, help="header/comment lines of each text file")
    p.add_argument("--relation-name", default="edge", help="the relation of files without a rel column")
    p.add_argument("--entity-type", default=DEFAULT_ENTITY_TYPE)
    p.add_argument("--relation-types", default=None, metavar="JSON",
                   help='file: {"rel": ["lhs_type", "rhs_type"], ...}; others use --entity-type')
    p.add_argument("--partitions", nargs="+", default=["1"], metavar="[TYPE=]P")
    p.add_argument("--partition-seed", type=int, default=0)
    p.add_argument("--entity-min-count", type=int, default=1)
    p.add_argument("--relation-min-count", type=int, default=1)
    p.add_argument("--valid-fraction", type=float, default=0.0)
    p.add_argument("--test-fraction", type=float, default=0.0)
    p.add_argument("--split-seed", type=int, default=0)
    p.add_argument("--skip-bad", action="store_true", help="drop and count malformed rows")
    p.add_argument("--overwrite", action="store_true")
    p.add_argument("--name", default=None, help="dataset name (default: OUT's last part)")
    p.add_argument("--block-mb", type=int, default=16, help="input read per batch")
    p.add_argument("--tmp-dir", default=None, help="spill files (default: beside OUT)")
    p.add_argument("--no-fsync", action="store_true",
                   help="skip the final fsync (the rename still protects against an interrupted process, "
                   "not against an OS crash)")
    p.add_argument("--dictionary-load", type=float, default=0.5,
                   help="name dictionaries' max load before doubling (up to 0.875: less memory per name)")
    a = p.parse_args(argv)
    rel_types = {}
    if a.relation_types:
        try:
            raw = json.loads(Path(a.relation_types).read_text())
        except json.JSONDecodeError as e:
            raise DataError(f"{a.relation_types}: not JSON ({e})") from None
        items = raw.items() if isinstance(raw, dict) else ((r["name"], r) for r in raw)
        for name, v in items:
            rel_types[name] = [v["lhs"], v["rhs"]] if isinstance(v, dict) else list(v)
    spec = ImportSpec(
        out=a.out, train=a.train, valid=a.valid, test=a.test, columns=a.columns,
        delimiter=_delimiter(a.delimiter), skip_rows=a.skip_rows, relation_name=a.relation_name,
        entity_type=a.entity_type, relation_types=rel_types, partitions=_parse_partitions(a.partitions),
        partition_seed=a.partition_seed, entity_min_count=a.entity_min_count,
        relation_min_count=a.relation_min_count, valid_fraction=a.valid_fraction,
        test_fraction=a.test_fraction, split_seed=a.split_seed, skip_bad=a.skip_bad,
        overwrite=a.overwrite, name=a.name, block_bytes=a.block_mb << 20, tmp_dir=a.tmp_dir,
        sync=not a.no_fsync, dictionary_load=a.dictionary_load)
    run_import(spec, log=lambda m: print(m, file=sys.stderr, flush=True))  # DataError: run_command
    return 0


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.import_edges", main))
