"""Reading delimited edge files (TSV/CSV, plain or gzip) with pyarrow's CSV reader.

Every malformed input stops the read with a `DataError` naming the file, the line and the text.
"""

from __future__ import annotations

import gzip
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from jgraph.errors import DataError

ROLES = ("lhs", "rel", "rhs", "weight", "ignore")
QUOTE_CHARS = 200  # most characters of a bad line quoted in an error
FLOAT32_MAX = float(np.finfo(np.float32).max)
# a first line made only of these words (any case) is a header, e.g. "head relation tail"
HEADER_WORDS = {"head", "relation", "tail", "h", "r", "t", "src", "dst", "source", "target", "lhs",
                "rel", "rhs", "subject", "predicate", "object", "from", "to", "node", "node1",
                "node2", "weight", "w", "label", "edge", "type", "id", "id1", "id2", "entity"}
log = logging.getLogger("jgraph")


def quoted(text: str) -> str:
    """`text` for an error message: repr'd, at most QUOTE_CHARS characters and "…" (a 10 MB bad line
    must not become 10 MB of stderr)."""
    if len(text) <= QUOTE_CHARS:
        return repr(text)
    return f"{text[:QUOTE_CHARS]!r}… ({len(text):,} characters)"


def header_line(fields: list[str], roles: list[str], next_fields: list[str] | None) -> bool:
    """Whether a file's first line (split into `fields`) is a header: every name column a header
    word, or a weight that does not parse as a number where the next line's does."""
    named = [f.strip().lower() for f, r in zip(fields, roles, strict=False) if r in ("lhs", "rel", "rhs")]
    if named and all(f in HEADER_WORDS for f in named):
        return True
    if "weight" in roles and len(fields) == len(roles) and next_fields and len(next_fields) == len(roles):
        i = roles.index("weight")
        return not _is_number(fields[i]) and _is_number(next_fields[i])
    return False


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
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


def _first_lines(path: Path, skip_rows: int, n: int = 2) -> list[str]:
    """The first `n` lines after `skip_rows` (fewer if the file is shorter), decoded leniently."""
    try:
        with _open_lines(path) as f:
            for _ in range(skip_rows):
                f.readline()
            lines = [f.readline() for _ in range(n)]
    except CORRUPT as e:
        raise unreadable(path, e) from None
    return [raw.decode("utf-8", errors="replace").rstrip("\r\n") for raw in lines if raw]


def _sniff_columns(path: Path, delimiter: str, skip_rows: int) -> int:
    first = _first_lines(path, skip_rows, 1)
    return len(first[0].split(delimiter)) if first and first[0] else 0


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
    lines = _first_lines(path, skip_rows)
    if lines and header_line(lines[0].split(delimiter), columns,
                             lines[1].split(delimiter) if len(lines) > 1 else None):
        log.warning("%s:%d: skipped a header line: %s", path, skip_rows + 1, quoted(lines[0]))
        skip_rows += 1
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
                f"{path}:{line}: expected {want} columns separated by {delimiter!r}, got {got}: "
                f"{quoted(text)}"
            ) from None
        if "UTF8" in str(e) or "utf8" in str(e).lower():
            line, text = _find_bad_utf8(path)
            raise DataError(f"{path}:{line}: not valid UTF-8: {quoted(text)}") from None
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
                f"{path}:{i + 1 + skip_rows}: empty {role} name in {quoted(_row_text(table, i, delimiter))}"
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
                    f"{path}:{i + 1 + skip_rows}: weight {quoted(str(v))} is not a finite number in "
                    f"{quoted(_row_text(table, i, delimiter))}"
                ) from None
    if np.any(w < 0):
        i = int(np.flatnonzero(w < 0)[0])
        raise DataError(
            f"{path}:{i + 1 + skip_rows}: negative weight {w[i]} in {quoted(_row_text(table, i, delimiter))}"
        )
    if np.any(w > FLOAT32_MAX):
        i = int(np.flatnonzero(w > FLOAT32_MAX)[0])
        raise DataError(f"{path}:{i + 1 + skip_rows}: weight {arr[i].as_py()} overflows float32 "
                        f"(largest {FLOAT32_MAX:.4g}) in {quoted(_row_text(table, i, delimiter))}")
    return w.astype(np.float32)
