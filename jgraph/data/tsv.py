"""Reading delimited edge files (TSV/CSV, plain or gzip) with pyarrow's CSV reader.

Every malformed input stops the read with a `DataError` naming the file, the line and the text.
"""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from jgraph.errors import DataError

ROLES = ("lhs", "rel", "rhs", "weight", "ignore")
DEFAULT_COLUMNS = {2: ["lhs", "rhs"], 3: ["lhs", "rel", "rhs"], 4: ["lhs", "rel", "rhs", "weight"]}


@dataclass
class EdgeColumns:
    """One file's edges as name columns (row i is line i + 1 of the file)."""

    path: str
    lhs: pa.Array  # string [E]
    rhs: pa.Array  # string [E]
    rel: pa.Array | None  # string [E] (None for 2-column graphs)
    weight: np.ndarray | None  # float32 [E]

    def __len__(self) -> int:
        return len(self.lhs)


def _open_lines(path: Path):
    if path.suffix == ".gz":
        return gzip.open(path, "rb")
    return open(path, "rb")


def unreadable(path: str | Path, e: BaseException) -> BaseException:
    """The error to raise for a read that failed: a corrupt or truncated compressed file (whose
    error names no file) as a DataError naming the file; an error naming its file as it is."""
    if isinstance(e, OSError) and e.filename is not None:
        return e
    return DataError(f"{path}: cannot be read ({' '.join(str(e).split()) or type(e).__name__}): "
                     "a truncated or corrupt compressed file?")


CORRUPT = (OSError, EOFError, zlib.error)  # what reading a damaged .gz raises (no file named)


def _sniff_columns(path: Path, delimiter: str, skip_rows: int) -> int:
    try:
        with _open_lines(path) as f:
            for _ in range(skip_rows):
                f.readline()
            first = f.readline().decode("utf-8", errors="replace").rstrip("\r\n")
    except CORRUPT as e:
        raise unreadable(path, e) from None
    return len(first.split(delimiter)) if first else 0


def _find_bad_utf8(path: Path) -> tuple[int, str]:
    with _open_lines(path) as f:
        for i, raw in enumerate(f, 1):
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                return i, raw.decode("utf-8", errors="replace").rstrip("\r\n")
    return 0, ""


def read_edges(path: str | Path, delimiter: str = "\t", columns: list[str] | None = None,
               skip_rows: int = 0) -> EdgeColumns:
    """Read an edge file; `columns` gives each column's role (default: by the column count)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    if columns is None:
        n = _sniff_columns(path, delimiter, skip_rows)
        if n not in DEFAULT_COLUMNS:
            raise DataError(
                f"{path}:{skip_rows + 1}: expected 2, 3 or 4 columns separated by {delimiter!r}, got {n}; "
                "set data.columns (roles: lhs, rel, rhs, weight, ignore)"
            )
        columns = DEFAULT_COLUMNS[n]
    for role in columns:
        if role not in ROLES:
            raise DataError(f"data.columns: unknown role {role!r} (known: {', '.join(ROLES)})")
    for role in ("lhs", "rhs"):
        if columns.count(role) != 1:
            raise DataError(f"data.columns must name {role!r} exactly once, got {columns}")
    names = [f"{role}_{i}" if role == "ignore" else role for i, role in enumerate(columns)]
    bad: list[tuple[int | None, str, int, int]] = []

    def on_invalid(row) -> str:
        bad.append((row.number, row.text, row.expected_columns, row.actual_columns))
        return "error"

    try:
        table = pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(column_names=names, use_threads=False, block_size=1 << 24,
                                           skip_rows=skip_rows),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, quote_char=False, ignore_empty_lines=False,
                invalid_row_handler=on_invalid,
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={n: pa.string() for n in names}, strings_can_be_null=False
            ),
        )
    except pa.ArrowInvalid as e:
        if bad:
            line, text, want, got = bad[0]
            raise DataError(
                f"{path}:{line}: expected {want} columns separated by {delimiter!r}, got {got}: {text!r}"
            ) from None
        if "UTF8" in str(e) or "utf8" in str(e).lower():
            line, text = _find_bad_utf8(path)
            raise DataError(f"{path}:{line}: not valid UTF-8: {text!r}") from None
        raise DataError(f"{path}: {e}") from None
    except CORRUPT as e:
        raise unreadable(path, e) from None

    def col(role: str) -> pa.Array:
        arr = table.column(role).combine_chunks()
        empty = pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(arr)), 0)
        if pc.any(empty).as_py():
            i = int(np.flatnonzero(empty.to_numpy(zero_copy_only=False))[0])
            if not _row_text(table, i, "").strip():
                raise DataError(f"{path}:{i + 1 + skip_rows}: blank line (expected {len(names)} columns)")
            raise DataError(
                f"{path}:{i + 1 + skip_rows}: empty {role} name in {_row_text(table, i, delimiter)!r}"
            )
        return arr

    weight = None
    if "weight" in columns:
        weight = _parse_weights(path, table.column("weight").combine_chunks(), table, delimiter,
                                skip_rows)
    return EdgeColumns(
        path=str(path),
        lhs=col("lhs"),
        rhs=col("rhs"),
        rel=col("rel") if "rel" in columns else None,
        weight=weight,
    )


def _row_text(table: pa.Table, i: int, delimiter: str) -> str:
    return delimiter.join(str(table.column(c)[i].as_py()) for c in table.column_names)


def _parse_weights(path: Path, arr: pa.Array, table: pa.Table, delimiter: str, skip_rows: int
                   ) -> np.ndarray:
    try:
        w = pc.cast(arr, pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        w = None
    if w is None or not np.all(np.isfinite(w)):
        values = arr.to_pylist()
        for i, v in enumerate(values):
            try:
                ok = np.isfinite(float(v))
            except ValueError:
                ok = False
            if not ok:
                raise DataError(
                    f"{path}:{i + 1 + skip_rows}: weight {v!r} is not a finite number in "
                    f"{_row_text(table, i, delimiter)!r}"
                ) from None
    if np.any(w < 0):
        i = int(np.flatnonzero(w < 0)[0])
        raise DataError(
            f"{path}:{i + 1 + skip_rows}: negative weight {w[i]} in {_row_text(table, i, delimiter)!r}"
        )
    return w.astype(np.float32)
