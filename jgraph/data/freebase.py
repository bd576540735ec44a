"""Freebase RDF dump (N-Triples, gzip) -> the importer's input, and a synthetic dump for tests.

    python -m jgraph.data.freebase convert freebase-rdf-latest.gz freebase/train.tsv.gz
    python -m jgraph.data.freebase generate synthetic.gz --entities 100000 --edges 1000000
    python -m jgraph.cli.import_edges data/freebase --train freebase/train.tsv.gz --partitions 16 \\
        --valid-fraction 0.0001 --test-fraction 0.0001

The dump (`freebase-rdf-latest.gz`, ~30 GB gzip, ~3.1B lines) has one triple per line, terms
separated by tabs: `<http://rdf.freebase.com/ns/m.0abc>\t<http://rdf.freebase.com/ns/people.
person.nationality>\t<http://rdf.freebase.com/ns/m.09c7w0>\t.` The converter keeps the triples
whose subject and object are both entities (`ns/m.` MIDs; `--prefixes m g` also keeps `g.` ids)
and whose predicate is in the `ns/` namespace, and writes `/m/0abc<TAB>people.person.nationality
<TAB>/m/09c7w0` (TSV, gzip when the name ends in .gz, or Parquet). Literals (names, dates,
numbers, keys), type assertions and other non-entity objects are dropped. PBG's Freebase run
trained on this graph (about 121M entities, 2.7B edges, 14.8k relations). Space-separated
N-Triples work too (--delimiter space): their literal lines have extra fields and are skipped.
Parsing is pyarrow's streaming CSV reader and vectorised string kernels, no Python line loop.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jgraph.errors import command_parser

NS = "<http://rdf.freebase.com/ns/"
MID_CHARS = np.frombuffer(b"0123456789bcdfghjklmnpqrstvwxyz_", np.uint8)  # Freebase's base-32


@dataclass
class ConvertStats:
    lines: int = 0
    kept: int = 0
    malformed: int = 0  # lines without 4 fields (skipped)
    predicates: set = field(default_factory=set)
    seconds: float = 0.0


def _writer(path: str):
    """(write(table), close()) for a TSV (.gz) or Parquet output."""
    schema = pa.schema([("lhs", pa.string()), ("rel", pa.string()), ("rhs", pa.string())])
    if path.endswith((".parquet", ".pq")):
        w = pq.ParquetWriter(path, schema)
        return w.write_table, w.close
    sink = pa.CompressedOutputStream(path, "gzip") if path.endswith(".gz") else pa.OSFile(path, "wb")
    w = pacsv.CSVWriter(sink, schema, write_options=pacsv.WriteOptions(
        include_header=False, delimiter="\t", quoting_style="none"))

    def close() -> None:
        w.close()
        sink.close()

    return w.write_table, close


def convert(src: str, dest: str, prefixes: tuple[str, ...] = ("m",), delimiter: str = "\t",
            block_bytes: int = 64 << 20, log=None) -> ConvertStats:
    """Stream the dump at `src` into entity-entity triples at `dest` (see the module docstring)."""
    stats = ConvertStats()
    t0 = time.perf_counter()

    def on_invalid(row) -> str:
        stats.malformed += 1
        return "skip"

    names = ["s", "p", "o", "dot"]
    reader = pacsv.open_csv(
        pa.input_stream(src, compression="detect"),
        read_options=pacsv.ReadOptions(column_names=names, block_size=block_bytes, use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter=delimiter, quote_char=False, escape_char=False,
                                         invalid_row_handler=on_invalid),
        convert_options=pacsv.ConvertOptions(column_types={n: pa.string() for n in names},
                                             include_columns=["s", "p", "o"]))
    write, close = _writer(dest)
    starts = [NS + p + "." for p in prefixes]
    try:
        for batch in reader:
            stats.lines += batch.num_rows
            s, p, o = batch.column(0), batch.column(1), batch.column(2)
            ent_s = _any_prefix(s, starts)
            keep = pc.and_(pc.and_(ent_s, _any_prefix(o, starts)), pc.starts_with(p, NS))
            if not pc.any(keep).as_py():
                continue
            s, p, o = s.filter(keep), p.filter(keep), o.filter(keep)
            rel = pc.utf8_slice_codeunits(p, len(NS), -1)
            table = pa.table({"lhs": _mid(s), "rel": rel, "rhs": _mid(o)})
            stats.kept += table.num_rows
            stats.predicates.update(pc.unique(rel).to_pylist())
            write(table)
            if log is not None:
                log(f"{stats.lines:,} lines, {stats.kept:,} entity triples ({time.perf_counter() - t0:.0f}s)")
    finally:
        close()
    stats.seconds = time.perf_counter() - t0
    return stats


def _any_prefix(arr: pa.Array, starts: list[str]) -> pa.Array:
    out = pc.starts_with(arr, starts[0])
    for s in starts[1:]:
        out = pc.or_(out, pc.starts_with(arr, s))
    return out


def _mid(iri: pa.Array) -> pa.Array:
    """<http://rdf.freebase.com/ns/m.0abc> -> /m/0abc (g.xyz -> /g/xyz)."""
    local = pc.utf8_slice_codeunits(iri, len(NS), -1)  # m.0abc
    kind = pc.utf8_slice_codeunits(local, 0, 1)
    rest = pc.utf8_slice_codeunits(local, 2)
    return pc.binary_join_element_wise("/", kind, "/", rest, "")


# ---------------------------------------------------------------- synthetic dump
def mids(ids: np.ndarray) -> pa.Array:
    """Freebase-style MIDs for integer ids: m.0 + 6 base-32 digits (vectorised)."""
    ids = np.asarray(ids, np.int64)
    digits = (ids[:, None] // (32 ** np.arange(5, -1, -1))[None, :]) % 32
    chars = np.concatenate([np.broadcast_to(np.frombuffer(b"m.0", np.uint8), (len(ids), 3)),
                            MID_CHARS[digits]], axis=1).astype(np.uint8)
    offsets = np.arange(len(ids) + 1, dtype=np.int32) * 9
    return pa.StringArray.from_buffers(len(ids), pa.py_buffer(offsets), pa.py_buffer(chars.tobytes()))


def generate_dump(path: str, num_entities: int, num_edges: int, num_relations: int = 100,
                  seed: int = 0, noise_per_edge: float = 1.0, block: int = 1 << 20) -> int:
    """Write a synthetic dump in the Freebase format; returns the number of entity-entity triples.

    Besides `num_edges` MID-to-MID triples (relations `synthetic.domain{d}.property{r}`, heads and
    tails Zipf-like), about `noise_per_edge` other lines per edge are mixed in, as in the real dump:
    names and keys (literals with language tags, datatypes, escaped quotes and tabs), type
    assertions (ns/ and rdf: objects) and `g.` ids."""
    rng = np.random.default_rng(seed)
    rels = pa.array([f"{NS}synthetic.domain{r % 7}.property{r}>" for r in range(num_relations)])
    out = pa.CompressedOutputStream(path, "gzip") if path.endswith(".gz") else pa.OSFile(path, "wb")

    def iri(ids):
        return pc.binary_join_element_wise(NS, mids(ids), ">", "")

    def zipf(n):
        return np.minimum((rng.pareto(1.2, n) * num_entities / 20).astype(np.int64), num_entities - 1)

    def const(text):
        return lambda n: pa.array([text] * n)

    noise_kinds = [
        (f"{NS}type.object.name>", lambda n: pc.binary_join_element_wise(
            '"Entity ', pc.cast(pa.array(rng.integers(10**6, size=n)), pa.string()), '"@en', "")),
        (f"{NS}type.object.type>", const(f"{NS}common.topic>")),
        ("<http://www.w3.org/1999/02/22-rdf-syntax-ns#type>", const(f"{NS}common.topic>")),
        (f"{NS}type.object.key>", const('"/wikipedia/en/A_\\"quoted\\"\\tname"')),
        (f"{NS}people.person.date_of_birth>", const('"1970-01-01"^^<http://www.w3.org/2001/XMLSchema#date>')),
        (f"{NS}common.topic.notable_for>", lambda n: pa.array([f"{NS}g.11bc{i}>" for i in range(n)])),
    ]
    done = 0
    try:
        while done < num_edges:
            n = min(block, num_edges - done)
            rel = rels.take(pa.array(rng.integers(num_relations, size=n)))
            cols = [[iri(zipf(n))], [rel], [iri(zipf(n))]]
            m = int(rng.poisson(noise_per_edge * n))
            for k, (pred, obj) in enumerate(noise_kinds):
                c = m // len(noise_kinds) + (k < m % len(noise_kinds))
                if c:
                    cols[0].append(iri(rng.integers(num_entities, size=c)))
                    cols[1].append(pa.array([pred] * c))
                    cols[2].append(obj(c))
            s, p, o = (pa.concat_arrays(c) for c in cols)
            lines = pc.binary_join_element_wise(s, p, o, ".\n", "\t")  # s<TAB>p<TAB>o<TAB>.\n
            lines = lines.take(pa.array(rng.permutation(len(lines))))
            _, offsets, data = lines.buffers()
            end = np.frombuffer(offsets, np.int32, len(lines) + 1)[-1]
            out.write(data[:end])
            done += n
    finally:
        out.close()
    return num_edges


def main(argv: list[str] | None = None) -> int:
    p = command_parser("python -m jgraph.data.freebase", __doc__)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("convert", help="dump -> lhs/rel/rhs triples (TSV, .gz, or .parquet)")
    c.add_argument("dump")
    c.add_argument("out")
    c.add_argument("--prefixes", nargs="+", default=["m"], help="entity id kinds kept (m = MIDs, g)")
    c.add_argument("--delimiter", default="tab", help="tab (the Freebase dump) or space (N-Triples)")
    g = sub.add_parser("generate", help="a synthetic dump in the same format")
    g.add_argument("out")
    g.add_argument("--entities", type=int, default=100_000)
    g.add_argument("--edges", type=int, default=1_000_000)
    g.add_argument("--relations", type=int, default=100)
    g.add_argument("--noise", type=float, default=1.0, help="non-entity lines per entity triple")
    g.add_argument("--seed", type=int, default=0)
    a = p.parse_args(argv)
    if a.cmd == "generate":
        t0 = time.perf_counter()
        generate_dump(a.out, a.entities, a.edges, a.relations, a.seed, a.noise)
        print(f"wrote {a.out}: {a.edges:,} entity triples and about {int(a.edges * a.noise):,} other lines "
              f"({time.perf_counter() - t0:.1f}s)")
        return 0
    delim = {"tab": "\t", "space": " ", "\\t": "\t"}.get(a.delimiter, a.delimiter)
    s = convert(a.dump, a.out, tuple(a.prefixes), delim, log=lambda m: print(m, file=sys.stderr, flush=True))
    rate = s.lines / max(s.seconds, 1e-9) / 1e6
    print(f"{s.lines:,} lines -> {s.kept:,} entity triples, {len(s.predicates):,} predicates, "
          f"{s.malformed:,} malformed lines skipped ({s.seconds:.1f}s, {rate:.2f}M lines/s) -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
