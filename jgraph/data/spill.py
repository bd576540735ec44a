"""The importer's disk side: append-only spill files, and the staging folder that becomes the
dataset only when it is complete.

Spill files hold raw numpy records, appended batch by batch and read back a piece at a time, so
the importer's memory never depends on the edge count. A local output is written into a staging
folder `.NAME.importing-PID` beside it and renamed to NAME at the end (after dataset.json), so an
interrupted import leaves nothing at NAME; the next import of NAME removes stale staging folders.
Files are written without an fsync each and flushed once (os.sync) before dataset.json and the
rename (`sync`). A kvstore URL
output (gs://, s3://, ...) cannot be renamed: its old dataset.json is deleted first and the new one
written last, and load_prepared refuses a location without it.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from jgraph.errors import DataError
from jgraph.storage import kv


class RecordSpill:
    """A file of fixed-size records, appended and read back in pieces."""

    def __init__(self, path: Path, dtype: np.dtype) -> None:
        self.path, self.dtype = path, np.dtype(dtype)

    def append(self, records: np.ndarray) -> None:
        with open(self.path, "ab") as f:
            np.asarray(records, self.dtype).tofile(f)

    @property
    def count(self) -> int:
        return self.path.stat().st_size // self.dtype.itemsize if self.path.exists() else 0

    def pieces(self, size: int) -> Iterator[tuple[int, np.ndarray]]:
        n = self.count
        for start in range(0, n, size):
            yield start, np.fromfile(self.path, self.dtype, min(size, n - start),
                                     offset=start * self.dtype.itemsize)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)


class ColumnSpill:
    """Parallel column files (one per field) kept open for appending; read back in pieces. A field
    with a default (e.g. weight 1) may be given as None: nothing is written for it until a batch
    gives it (then the rows before get the default), and pieces fill it in."""

    def __init__(self, folder: Path, name: str, fields: tuple[tuple[str, type], ...],
                 defaults: dict[str, float] | None = None) -> None:
        self.fields, self.defaults = fields, dict(defaults or {})
        self.paths = {f: folder / f"{name}.{f}" for f, _ in fields}
        self._files = {f: open(p, "wb") for f, p in self.paths.items()}
        self._written = {f: 0 for f, _ in fields}  # rows in each file
        self.count = 0

    def append(self, *columns) -> None:
        n = len(columns[0])
        for (f, dt), data in zip(self.fields, columns, strict=True):
            if data is None and not self._written[f]:
                if f not in self.defaults:
                    raise ValueError(f"field {f} has no default")
                continue
            gap = self.count - self._written[f]
            if gap:
                np.full(gap, self.defaults[f], dt).tofile(self._files[f])
            np.asarray(np.full(n, self.defaults[f], dt) if data is None else data, dt).tofile(self._files[f])
            self._written[f] = self.count + n
        self.count += n

    def close(self) -> None:
        for f in self._files.values():
            f.close()

    def pieces(self, size: int) -> Iterator[tuple[int, list[np.ndarray]]]:
        for start in range(0, self.count, size):
            n = min(size, self.count - start)
            yield start, [np.fromfile(self.paths[f], dt, n, offset=start * np.dtype(dt).itemsize)
                          if self._written[f] else np.full(n, self.defaults[f], dt) for f, dt in self.fields]

    def remove(self) -> None:
        self.close()
        for p in self.paths.values():
            p.unlink(missing_ok=True)


class Staging:
    """Where an import writes (`location`), its spill folder, and publish()/discard()."""

    def __init__(self, out: str, overwrite: bool, tmp_dir: str | None, meta: str, sync: bool = True) -> None:
        self.sync = sync
        self.local = "://" not in out or kv.is_local(out)
        if self.local:
            self.out = Path(kv.local_path(out) if "://" in out else out).absolute()
            if self.out.exists() and not overwrite:
                raise DataError(f"{self.out} exists; pass --overwrite to replace it")
            self.out.parent.mkdir(parents=True, exist_ok=True)
            for stale in self.out.parent.glob(f".{self.out.name}.importing-*"):
                shutil.rmtree(stale, ignore_errors=True)  # left by an interrupted import
            self.stage = self.out.parent / f".{self.out.name}.importing-{os.getpid()}"
            self.stage.mkdir()
            self.location = str(self.stage)
            self.spill = Path(tempfile.mkdtemp(dir=tmp_dir)) if tmp_dir else self.stage / "_spill"
            self.spill.mkdir(exist_ok=True)
        else:
            import tensorstore as ts

            store = kv.open_kvstore(kv.base_url(out), ts.Context())
            if store.read(meta).result().state == "value":
                if not overwrite:
                    raise DataError(f"{out} holds a dataset; pass --overwrite to replace it")
                store.delete(meta).result()  # unreadable from now until the new one is finished
            self.location = out
            self.spill = Path(tempfile.mkdtemp(dir=tmp_dir, prefix="jgraph-import-"))

    def context(self):
        """TensorStore context: local files without an fsync per chunk (synced by `sync_all`)."""
        import tensorstore as ts

        return ts.Context({"file_io_sync": False}) if self.local else ts.Context()

    def sync_all(self) -> None:
        """fsync everything written so far (before the last file, dataset.json, is written)."""
        shutil.rmtree(self.spill, ignore_errors=True)
        if self.local and self.sync:
            os.sync()  # one flush of the file systems: cheaper than an fsync per file (thousands)

    def publish(self) -> None:
        shutil.rmtree(self.spill, ignore_errors=True)
        if not self.local:
            return
        old = None
        if self.out.exists():
            old = self.out.parent / f".{self.out.name}.old-{os.getpid()}"
            os.rename(self.out, old)
        os.rename(self.stage, self.out)
        if self.sync:
            kv.fsync_path(self.out.parent)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)

    def discard(self) -> None:
        shutil.rmtree(self.spill, ignore_errors=True)
        if self.local:
            shutil.rmtree(self.stage, ignore_errors=True)
