"""The Freebase converter (jgraph/data/freebase.py) on the synthetic dump: exactly the entity-to-entity
triples a line-by-line reading of the N-Triples finds (literals, types, g. ids dropped), in TSV/gzip
and Parquet, space-separated N-Triples too, and the converted graph imports."""

from __future__ import annotations

import collections
import gzip
from pathlib import Path

import pyarrow.parquet as pq

from jgraph.data.freebase import NS, convert, generate_dump, mids
from jgraph.data.importer import ImportSpec, run_import


def _reference(dump: Path, sep: str = "\t") -> collections.Counter:
    """Triples by a plain line loop: subject and object ns/m. IRIs, predicate in ns/."""
    out = collections.Counter()
    for line in gzip.open(dump, "rt"):
        parts = line.rstrip("\n").split(sep)
        if len(parts) != 4:
            continue
        s, p, o, _ = parts
        if s.startswith(NS + "m.") and o.startswith(NS + "m.") and p.startswith(NS):
            out[("/m/" + s[len(NS) + 2 : -1], p[len(NS) : -1], "/m/" + o[len(NS) + 2 : -1])] += 1
    return out


def _read_tsv(path: Path) -> collections.Counter:
    return collections.Counter(tuple(x.split("\t")) for x in gzip.open(path, "rt").read().splitlines())


def test_converter_keeps_exactly_the_entity_triples(tmp_path: Path) -> None:
    dump = tmp_path / "fb.gz"
    generate_dump(str(dump), num_entities=2000, num_edges=20_000, num_relations=30, noise_per_edge=1.5,
                  block=5000)
    lines = gzip.open(dump, "rt").read().splitlines()
    assert len(lines) > 45_000 and any('"@en' in x for x in lines) and any("/ns/g." in x for x in lines)
    ref = _reference(dump)
    assert sum(ref.values()) == 20_000
    stats = convert(str(dump), str(tmp_path / "out.tsv.gz"), block_bytes=1 << 16)
    assert _read_tsv(tmp_path / "out.tsv.gz") == ref
    assert stats.kept == 20_000 and stats.lines == len(lines) and stats.malformed == 0
    assert len(stats.predicates) == 30
    convert(str(dump), str(tmp_path / "out.parquet"))
    t = pq.read_table(tmp_path / "out.parquet").to_pydict()
    assert collections.Counter(zip(t["lhs"], t["rel"], t["rhs"], strict=True)) == ref
    # the converted graph is the importer's input
    res = run_import(ImportSpec(out=str(tmp_path / "ds"), train=[str(tmp_path / "out.tsv.gz")],
                                partitions={"*": 2}), log=lambda m: None)
    assert res["edges"]["train"] == 20_000
    assert res["entities_seen"]["entity"] == len({x for h, _, t in ref for x in (h, t)})


def test_space_separated_ntriples_and_g_ids(tmp_path: Path) -> None:
    m = [f"{NS}{x}>" for x in mids([1, 2, 3]).to_pylist()]
    lines = [
        f"{m[0]} {NS}people.person.spouse> {m[1]} .",
        f'{m[0]} {NS}type.object.name> "Some Name with spaces"@en .',  # literal: extra fields, skipped
        f"{m[1]} {NS}common.topic.notable_for> {NS}g.11bcd> .",
        f"{m[2]} <http://www.w3.org/2000/01/rdf-schema#label> {m[1]} .",  # predicate outside ns/
        f"{m[2]} {NS}film.film.directed_by> {m[0]} .",
    ]
    dump = tmp_path / "nt.gz"
    dump.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    stats = convert(str(dump), str(tmp_path / "o.tsv.gz"), delimiter=" ")
    assert _read_tsv(tmp_path / "o.tsv.gz") == collections.Counter({
        ("/m/0000001", "people.person.spouse", "/m/0000002"): 1,
        ("/m/0000003", "film.film.directed_by", "/m/0000001"): 1})
    assert stats.malformed == 1 and stats.lines == 4
    convert(str(dump), str(tmp_path / "g.tsv.gz"), prefixes=("m", "g"), delimiter=" ")
    assert ("/m/0000002", "common.topic.notable_for", "/g/11bcd") in _read_tsv(tmp_path / "g.tsv.gz")
