"""Streaming edge files: TSV/CSV (plain or gzip) and Parquet, batch by batch, rows checked.

pyarrow parses (its streaming CSV reader, `ParquetFile.iter_batches`); nothing here loops over
rows in Python except on the error path. Every batch is checked: the column count, UTF-8, empty
names, weights (finite, >= 0). A bad row stops the read with a `DataError` naming the file, the line
(Parquet: the row) and the text, unless a `BadRows` collector is given: then bad rows are dropped
and counted, and the first few are kept as examples.

Columns are given by role (lhs, rel, rhs, weight, ignore), by position (`["lhs", "rel", "rhs"]`,
default by the column count as in jgraph/data/tsv.py) or, for Parquet, by column name
(`["lhs=src", "rhs=dst"]`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numba
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from jgraph.data.dictionary import string_buffers
from jgraph.data.pipeline import ordered_map, readahead
from jgraph.data.tsv import (
    CORRUPT,
    DEFAULT_COLUMNS,
    FLOAT32_MAX,
    ROLES,
    _sniff_columns,
    quoted,
    unreadable,
)
from jgraph.errors import DataError

PARQUET_SUFFIXES = (".parquet", ".pq")


def file_format(path: str) -> str:
    """tsv, csv or parquet, from the file name (.gz allowed for text)."""
    name = path[:-3] if path.endswith(".gz") else path
    if name.endswith(PARQUET_SUFFIXES):
        return "parquet"
    return "csv" if name.endswith(".csv") else "tsv"


@dataclass
class BadRows:
    """Rows dropped under --skip-bad: how many, and the first `keep` as 'file:line: why: text'."""

    keep: int = 10
    count: int = 0
    examples: list[str] = field(default_factory=list)
    _first: list = field(default_factory=list, repr=False)
    _files: dict = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, path: str, line: int, why: str, text: str) -> None:
        """One dropped row (`line`: the file line, or the Parquet row). Thread-safe; the examples
        are the first `keep` in file order (files in the order read) whatever the calls' order."""
        with self._lock:
            self.count += 1
            order = self._files.setdefault(path, len(self._files))
            self._first.append((order, line, f"{path}:{line}: {why}: {quoted(text)}"))
            self._first.sort()
            del self._first[self.keep :]
            self.examples = [e for _, _, e in self._first]


@dataclass
class EdgeBatch:
    """A batch of checked rows: names as UTF-8 string arrays, weights as float32."""

    lhs: pa.Array
    rhs: pa.Array
    rel: pa.Array | None
    weight: np.ndarray | None

    def __len__(self) -> int:
        return len(self.lhs)


def _roles(columns: list[str] | None, available: int | None, where: str) -> tuple[list[str], dict]:
    """(role per position, {role: column name}) from the --columns spec."""
    named = {}
    if columns and all("=" in c for c in columns):
        for c in columns:
            role, name = c.split("=", 1)
            named[role] = name
        roles = list(named)
    else:
        if columns is None:
            if available not in DEFAULT_COLUMNS:
                raise DataError(f"{where}: expected 2, 3 or 4 columns, got {available}; name the roles "
                                "with --columns (lhs, rel, rhs, weight, ignore)")
            columns = DEFAULT_COLUMNS[available]
        roles = list(columns)
    for role in roles:
        if role not in ROLES:
            raise DataError(f"columns: unknown role {role!r} (known: {', '.join(ROLES)})")
    for role in ("lhs", "rhs"):
        if roles.count(role) != 1:
            raise DataError(f"columns must name {role!r} exactly once, got {roles}")
    return roles, named


class EdgeReader:
    """Batches of one edge file (see the module docstring)."""

    def __init__(self, path: str, columns: list[str] | None = None, delimiter: str | None = None,
                 skip_rows: int = 0, block_bytes: int = 64 << 20, fmt: str | None = None,
                 bad: BadRows | None = None) -> None:
        self.path = str(path)
        if not os.path.isfile(self.path):
            raise DataError(f"{self.path}: no such file")
        self.format = fmt or file_format(self.path)
        self.delimiter = delimiter or ("," if self.format == "csv" else "\t")
        self.skip_rows, self.block_bytes, self.bad = skip_rows, block_bytes, bad
        self.rows_read = 0  # rows parsed, bad ones included
        if self.format == "parquet":
            self._pq = pq.ParquetFile(self.path)
            names = self._pq.schema_arrow.names
            self.roles, named = _roles(columns, len(names), self.path)
            if named:
                missing = [n for n in named.values() if n not in names]
                if missing:
                    raise DataError(f"{self.path}: no column {missing[0]!r} (has {', '.join(names)})")
                self._cols = dict(named)
            else:
                if len(self.roles) > len(names):
                    raise DataError(f"{self.path}: {len(names)} columns, --columns names {len(self.roles)}")
                self._cols = {r: names[i] for i, r in enumerate(self.roles) if r != "ignore"}
        else:
            if columns and any("=" in c for c in columns):
                raise DataError("columns: role=name needs Parquet input; give text columns by position")
            n = None if columns else _sniff_columns(Path(self.path), self.delimiter, skip_rows)
            self.roles, _ = _roles(columns, n, f"{self.path}:{skip_rows + 1}")
            self._names = [f"{r}_{i}" if r == "ignore" else r for i, r in enumerate(self.roles)]

    # ------------------------------------------------------------------ text
    def _blocks(self) -> Iterator[tuple[np.ndarray, int]]:
        """(whole lines of about block_bytes as a uint8 array, lines before them) — read here, not
        by pyarrow's streaming reader, whose readahead is unbounded when parsing is slower than the
        disk. Each block is a fresh buffer the file is read straight into (after the previous
        block's unfinished line): no copy of the block."""
        carry, lines = np.zeros(0, np.uint8), 0
        with pa.input_stream(self.path, compression="detect") as stream:
            while True:
                buf = np.empty(len(carry) + self.block_bytes, np.uint8)
                buf[: len(carry)] = carry
                try:
                    got = stream.readinto(buf[len(carry) :])
                except CORRUPT as e:
                    raise unreadable(self.path, e) from None
                data = buf[: len(carry) + got]
                if not len(data):
                    return
                cut = len(data)
                if got:
                    ends = _last_newline(data)
                    if ends < 0:  # a line longer than the block: read on
                        carry = data
                        continue
                    cut = ends + 1
                block, carry = data[:cut], data[cut:].copy()
                yield block, lines
                lines += _count_newlines(block) + (block[-1] != 10)

    def _parse(self, item: tuple[np.ndarray, int]) -> tuple[pa.Table | None, int, list[int], int]:
        """(table of a block's rows or None, lines of the file before its first row, lines of the
        rows skipped in it, rows read). Thread-safe: blocks are parsed by several threads."""
        block, before = item
        invalid: list[tuple[int, str, int, int]] = []

        def on_invalid(row) -> str:
            line = before + row.number
            invalid.append((line, row.text, row.expected_columns, row.actual_columns))
            if self.bad is None:
                return "error"
            why = f"expected {row.expected_columns} columns, got {row.actual_columns}"
            self.bad.add(self.path, line, why, row.text)
            return "skip"

        quote = '"' if self.format == "csv" else False
        parse = pacsv.ParseOptions(delimiter=self.delimiter, quote_char=quote, ignore_empty_lines=False,
                                   invalid_row_handler=on_invalid)
        # relations repeat: parsed into a dictionary, so each distinct one is checked once
        types = {n: pa.dictionary(pa.int32(), pa.binary()) if n == "rel" else pa.binary()
                 for n in self._names}
        convert = pacsv.ConvertOptions(column_types=types, strings_can_be_null=False)
        skip = self.skip_rows if before == 0 else 0
        try:
            table = pacsv.read_csv(pa.BufferReader(pa.py_buffer(block)), read_options=pacsv.ReadOptions(
                column_names=self._names, use_threads=False, skip_rows=skip, block_size=len(block) + 1),
                parse_options=parse, convert_options=convert)
        except pa.ArrowInvalid as e:
            if invalid and self.bad is None:
                line, text, want, got = invalid[-1]
                raise DataError(f"{self.path}:{line}: expected {want} columns separated by "
                                f"{self.delimiter!r}, got {got}: {quoted(text)}") from None
            if "Empty CSV file" in str(e):
                return None, before + skip, [], len(invalid)
            raise DataError(f"{self.path}: {e}") from None
        return table, before + skip, [r[0] for r in invalid], table.num_rows + len(invalid)

    def _line(self, row: int, skipped: list[int], base: int) -> int:
        """File line of a block's row-th kept row: `base` lines precede the block's first row,
        `skipped` are the (sorted) lines of its rows skipped as invalid."""
        s = np.asarray(skipped, np.int64) - base - 1 - np.arange(len(skipped))
        return int(base + row + 1 + np.searchsorted(s, row, "right"))

    # ------------------------------------------------------------------ batches
    def __iter__(self) -> Iterator[EdgeBatch]:
        return self.batches()

    def batches(self, fn=None, workers: int = 2) -> Iterator:
        """Checked batches (or fn(batch), e.g. hashing names) in file order. Blocks are read by a
        thread and parsed, checked and passed to fn by `workers` threads, a few blocks at a time."""
        if self.format == "parquet":
            cols = list(dict.fromkeys(self._cols.values()))
            pieces = self._pq.iter_batches(batch_size=max(self.block_bytes // 32, 1024), columns=cols)

            def tables():
                first = 0
                for batch in pieces:
                    yield pa.table({role: batch.column(name) for role, name in self._cols.items()}), first
                    first += batch.num_rows

            def work(item):
                table, first = item
                return self._check(table, lambda i: first + i + 1), table.num_rows
        else:
            tables = self._blocks

            def work(item):
                table, base, skipped, rows = self._parse(item)
                if table is None:
                    return None, rows
                return self._check(table, lambda i: self._line(i, skipped, base)), rows

        def work_fn(item):
            batch, rows = work(item)
            return (fn(batch) if fn is not None and batch is not None else batch), rows

        for out, rows in ordered_map(work_fn, readahead(tables()), workers, workers + 1):
            self.rows_read += rows
            if out is not None:
                yield out

    def _where(self, line: int) -> str:
        return f"{self.path}: row {line}" if self.format == "parquet" else f"{self.path}:{line}"

    def _text_of(self, table: pa.Table, i: int) -> str:
        vals = []
        for c in table.column_names:
            v = table.column(c)[i].as_py()
            vals.append(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v))
        return self.delimiter.join(vals)

    def _check(self, table: pa.Table, where) -> EdgeBatch | None:
        """Checked names and weights of a batch; bad rows raise or are dropped (see BadRows)."""
        n = table.num_rows
        bad = np.zeros(n, bool)
        why: dict[int, str] = {}

        def flag(rows: np.ndarray, reason: str) -> None:
            for i in rows[~bad[rows]][: 1 if self.bad is None else None]:
                why.setdefault(int(i), reason)
            bad[rows] = True

        names = {}
        for role in ("lhs", "rel", "rhs"):
            if role not in table.column_names:
                continue
            arr = table.column(role).combine_chunks()
            if pa.types.is_dictionary(arr.type) and not arr.null_count:  # check each value once
                values, problems = _checked_names(arr.dictionary, role)
                index = arr.indices.to_numpy(zero_copy_only=False)
                problems = [(np.flatnonzero(np.isin(index, rows)), reason) for rows, reason in problems]
                arr = pa.DictionaryArray.from_arrays(arr.indices, values)
            else:
                arr, problems = _checked_names(arr.dictionary_decode() if pa.types.is_dictionary(arr.type)
                                               else arr, role)
            for rows, reason in problems:
                if rows.size and reason.startswith("empty"):
                    blank = [i for i in rows if not self._text_of(table, int(i)).strip()]
                    flag(np.array(blank, np.int64), "blank line")
                flag(rows, reason)
            names[role] = arr
        weight = None
        if "weight" in table.column_names:
            weight, rows, reason = _weights(table.column("weight").combine_chunks())
            for r, w in zip(rows, reason, strict=True):
                flag(np.array([r]), w)
        if bad.any():
            first_bad = int(np.flatnonzero(bad)[0])
            if self.bad is None:
                raise DataError(f"{self._where(where(first_bad))}: {why[first_bad]}: "
                                f"{quoted(self._text_of(table, first_bad))}")
            for i in np.flatnonzero(bad):
                self.bad.add(self.path, where(int(i)), why.get(int(i), "bad row"),
                             self._text_of(table, int(i)))
            keep = pa.array(~bad)
            names = {k: v.filter(keep) for k, v in names.items()}
            weight = None if weight is None else weight[~bad]
            if not len(names["lhs"]):
                return None
        return EdgeBatch(names["lhs"], names["rhs"], names.get("rel"), weight)


@numba.njit(nogil=True, cache=True)
def _count_newlines(data: np.ndarray) -> int:
    n = 0
    for b in data:
        n += b == 10
    return n


@numba.njit(nogil=True, cache=True)
def _last_newline(data: np.ndarray) -> int:
    """Index of the last b"\\n" in data, -1 if none."""
    for i in range(len(data) - 1, -1, -1):
        if data[i] == 10:
            return i
    return -1


@numba.njit(nogil=True, cache=True)
def _maybe_blank(offsets: np.ndarray, lo: int, data: np.ndarray, out: np.ndarray) -> None:
    """out[i]: name i is empty or has only bytes that may belong to white space (ASCII white
    space, or non-ASCII: a multi-byte character may be a Unicode space)."""
    for i in range(len(offsets) - 1):
        blank = True
        for j in range(offsets[i] - lo, offsets[i + 1] - lo):
            b = data[j]
            if b < 128 and not (b == 32 or 9 <= b <= 13):
                blank = False
                break
        out[i] = blank


def _blank_names(arr: pa.Array) -> np.ndarray:
    """Rows of a string array whose name is empty or only white space (pc.utf8_is_space's rule;
    it runs on the few candidates only)."""
    off, lo, data = string_buffers(arr)
    maybe = np.empty(len(arr), bool)
    _maybe_blank(off, lo, data, maybe)
    rows = np.flatnonzero(maybe)
    if rows.size:
        cand = arr.take(pa.array(rows))
        space = pc.or_(pc.equal(pc.binary_length(cand), 0), pc.utf8_is_space(cand))
        rows = rows[space.to_numpy(zero_copy_only=False)]
    return rows


def _checked_names(arr: pa.Array, role: str) -> tuple[pa.Array, list[tuple[np.ndarray, str]]]:
    """(the names as a UTF-8 string array, [(rows, why)] of missing, non-UTF-8 and empty names)."""
    problems = []
    if pa.types.is_null(arr.type) or arr.null_count:
        nulls = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
        problems.append((nulls, f"missing {role} name"))
        arr = arr.fill_null("") if not pa.types.is_null(arr.type) else pa.array([""] * len(arr))
    if not (pa.types.is_binary(arr.type) or pa.types.is_string(arr.type)
            or pa.types.is_large_binary(arr.type) or pa.types.is_large_string(arr.type)):
        arr = pc.cast(arr, pa.string())
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        arr, bad_utf8 = _as_utf8(arr)
        problems.append((bad_utf8, f"{role} name is not valid UTF-8"))
    problems.append((_blank_names(arr), f"empty {role} name"))
    return arr, problems


def _as_utf8(arr: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """(the array as UTF-8 strings, rows that are not valid UTF-8 — replaced by ''), bisecting."""
    try:
        return arr.cast(pa.string()), np.zeros(0, np.int64)
    except pa.ArrowInvalid:
        pass
    bad: list[int] = []

    def find(lo: int, hi: int) -> None:
        try:
            arr.slice(lo, hi - lo).cast(pa.string())
        except pa.ArrowInvalid:
            if hi - lo == 1:
                bad.append(lo)
            else:
                mid = (lo + hi) // 2
                find(lo, mid)
                find(mid, hi)

    find(0, len(arr))
    mask = np.zeros(len(arr), bool)
    mask[bad] = True
    fixed = pc.if_else(pa.array(mask), pa.scalar(b"", arr.type), arr).cast(pa.string())
    return fixed, np.array(bad, np.int64)


def _weights(arr: pa.Array) -> tuple[np.ndarray, list[int], list[str]]:
    """(float32 weights, bad rows, reasons): not a number, not finite (in float32), or negative."""
    if pa.types.is_binary(arr.type):
        arr, _ = _as_utf8(arr)
    nulls = arr.is_null().to_numpy(zero_copy_only=False) if arr.null_count else np.zeros(len(arr), bool)
    try:
        w = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
        bad_parse = nulls
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        vals = arr.to_pylist()
        w = np.empty(len(vals))
        bad_parse = np.zeros(len(vals), bool)
        for i, v in enumerate(vals):
            try:
                w[i] = float(v)
            except (TypeError, ValueError):
                w[i], bad_parse[i] = np.nan, True
    rows, reasons = [], []
    w = np.where(np.abs(w) > FLOAT32_MAX, np.inf, w)  # 1e300 is finite only in float64
    for i in np.flatnonzero(bad_parse | ~np.isfinite(w) | (w < 0)):
        rows.append(int(i))
        reasons.append("weight is not a number" if bad_parse[i] else
                       "weight is not finite in float32" if not np.isfinite(w[i]) else "negative weight")
    return np.where(np.isfinite(w), w, 0.0).astype(np.float32), rows, reasons
