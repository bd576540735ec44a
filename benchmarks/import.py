"""Streaming import at scale: edges/s and peak RSS of `python -m jgraph.cli.import_edges`.

    python benchmarks/import.py                                    # 10M and 100M edges, 4M entities
    python benchmarks/import.py --edges 1000000 --entities 100000  # a quick one
    python benchmarks/import.py --edges 10000000 --format tsv.gz parquet

For each edge count a synthetic edge list is generated once (cached in --workdir): heads and tails
uniform over a fixed set of Freebase-style entity names (`/m/0` + 6 base-32 characters), relation
names like `/domain3/type17/property873`, one edge per line (TSV: about 50 bytes a line). The entity
count stays the same for every edge count, so the dictionaries are the same size and the peak RSS
should not grow with the edges. Inputs are generated in a separate process and the importer runs in
a child process (16 partitions = 256 edge buckets by default); its own figures (wall seconds per
pass, peak RSS = VmHWM) come from the dataset.json it writes. Rows are appended to
benchmarks/results/import.csv.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from jgraph.data.freebase import mids
from jgraph.lab.report import append_csv


def generate(path: Path, edges: int, entities: int, relations: int, fmt: str, seed: int = 0) -> None:
    """The synthetic edge list (see the module docstring), written block by block."""
    rng = np.random.default_rng(seed)
    rel_names = pa.array([f"/domain{r % 37}/type{r % 101}/property{r}" for r in range(relations)])
    tmp = path.with_name(path.name + ".tmp")
    sink = pa.CompressedOutputStream(str(tmp), "gzip") if fmt == "tsv.gz" else None
    out = open(tmp, "wb") if fmt == "tsv" else None
    writer = None
    block = 1 << 22
    for start in range(0, edges, block):
        n = min(block, edges - start)
        h, t = (pc.binary_join_element_wise("/m/", pc.utf8_slice_codeunits(mids(ids), 2), "")
                for ids in (rng.integers(entities, size=n), rng.integers(entities, size=n)))
        r = rel_names.take(pa.array(rng.integers(relations, size=n)))
        if fmt == "parquet":
            table = pa.table({"lhs": h, "rel": r, "rhs": t})
            writer = writer or pq.ParquetWriter(str(tmp), table.schema)
            writer.write_table(table, row_group_size=1 << 20)
            continue
        lines = pc.binary_join_element_wise(h, r, t, "", "\t")  # h\tr\tt\t -> replace the last tab
        lines = pc.binary_join_element_wise(pc.utf8_slice_codeunits(lines, 0, -1), "\n", "")
        _, offsets, data = lines.buffers()
        end = np.frombuffer(offsets, np.int32, len(lines) + 1)[-1]
        (sink or out).write(data[:end])
    for f in (sink, out, writer):
        if f is not None:
            f.close()
    os.replace(tmp, path)


def run_import(src: Path, out: Path, parts: int, extra: list[str]) -> tuple[dict, float]:
    cmd = [sys.executable, "-m", "jgraph.cli.import_edges", str(out), "--train", str(src),
           "--partitions", str(parts), "--overwrite", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        print(proc.stdout[-3000:])
        raise SystemExit("import failed")
    return json.loads((out / "dataset.json").read_text())["import"], wall


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--edges", type=int, nargs="+", default=[10_000_000, 100_000_000])
    p.add_argument("--entities", type=int, default=4_000_000)
    p.add_argument("--relations", type=int, default=1000)
    p.add_argument("--parts", type=int, default=16)
    p.add_argument("--format", nargs="+", default=["tsv"], choices=["tsv", "tsv.gz", "parquet"])
    p.add_argument("--workdir", default=None, help="inputs and outputs (default: a temp dir, removed)")
    p.add_argument("--keep", action="store_true", help="keep the generated inputs")
    p.add_argument("--import-args", nargs=argparse.REMAINDER, default=[],
                   help="passed to the importer (e.g. --no-fsync)")
    a = p.parse_args()
    work = Path(a.workdir or tempfile.mkdtemp(prefix="jgraph-import-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    results = Path(__file__).parent / "results" / "import.csv"
    print(f"{'edges':>12} {'format':>7} {'input GB':>8} {'seconds':>8} {'edges/s':>11} {'peak RSS':>9}  "
          "passes")
    for fmt in a.format:
        for n in a.edges:
            ext = {"tsv": "tsv", "tsv.gz": "tsv.gz", "parquet": "parquet"}[fmt]
            src = work / f"edges-{n}-{a.entities}-{a.relations}.{ext}"
            if not src.exists():  # in a child process: the importer's peak RSS must not include ours
                t0 = time.perf_counter()
                proc = multiprocessing.get_context("spawn").Process(
                    target=generate, args=(src, n, a.entities, a.relations, fmt))
                proc.start()
                proc.join()
                if proc.exitcode:
                    raise SystemExit("generating the input failed")
                print(f"  (generated {src.name}: {src.stat().st_size / 1e9:.2f} GB in "
                      f"{time.perf_counter() - t0:.0f}s)", flush=True)
            os.sync()  # the last run's (or the generator's) dirty pages are not written back during this one
            stats, wall = run_import(src, work / "out", a.parts, a.import_args)
            sec = stats["seconds"]
            row = {
                "edges": n, "format": fmt, "entities": a.entities, "relations": a.relations,
                "partitions": a.parts, "input_gb": round(src.stat().st_size / 1e9, 3),
                "import_seconds": round(sec["total"], 2), "process_seconds": round(wall, 2),
                "edges_per_second": round(n / sec["total"]), "peak_rss_mib": round(stats["peak_rss_mib"]),
                **{f"{k}_seconds": round(v, 2) for k, v in sec.items() if k != "total"},
                "load_avg_1m": os.getloadavg()[0], "cpus": os.cpu_count(), "machine": platform.machine(),
                "date": time.strftime("%Y-%m-%d %H:%M"),
            }
            passes = ", ".join(f"{k} {v:.1f}s" for k, v in sec.items() if k != "total")
            print(f"{n:>12,} {fmt:>7} {row['input_gb']:>8.2f} {sec['total']:>8.1f} "
                  f"{row['edges_per_second']:>11,} {row['peak_rss_mib']:>6} MiB  {passes}", flush=True)
            append_csv(results, list(row), list(row.values()))
            shutil.rmtree(work / "out", ignore_errors=True)
            if not a.keep:
                src.unlink()
    if not a.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
