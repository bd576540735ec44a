"""Locations: a local path or a TensorStore kvstore URL (file://, memory://, gs://, s3://, ...)."""

from __future__ import annotations

import os

import tensorstore as ts

from jgraph.errors import UserError


class CheckpointError(UserError, RuntimeError):
    """A checkpoint location that cannot be used: unreadable, incomplete, locked or not writable."""


def base_url(location: str) -> str:
    """A kvstore URL ending in '/' for a path or URL."""
    if "://" not in location:
        location = "file://" + os.path.abspath(location)
    return location if location.endswith("/") else location + "/"


def join(base: str, *parts: str) -> str:
    return base + "/".join(p.strip("/") for p in parts) + "/"


def open_kvstore(url: str, context: ts.Context) -> ts.KvStore:
    return ts.KvStore.open(url, context=context).result()


def is_local(url: str) -> bool:
    return url.startswith("file://")


def local_path(url: str) -> str:
    return url[len("file://"):]


def write_object(url: str, key: str, data: bytes, store: ts.KvStore | None = None) -> None:
    """Write one whole object under a kvstore URL: on local disk all at once (`write_atomic`),
    elsewhere through the kvstore (`store`, or one opened for the call)."""
    if is_local(url):
        path = os.path.join(local_path(url), key)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        write_atomic(path, data)
    else:
        (store or open_kvstore(url, ts.Context())).write(key, data).result()


def read_object(url: str, key: str) -> bytes | None:
    """One whole object under a kvstore URL, or None if there is none."""
    if is_local(url):
        path = os.path.join(local_path(url), key)
        if not os.path.isfile(path):
            return None
        with open(path, "rb") as f:
            return f.read()
    r = open_kvstore(url, ts.Context()).read(key).result()
    return r.value if r.state == "value" else None


def write_atomic(path: str | os.PathLike, data: str | bytes) -> None:
    """Replace a local file by `data` all at once: written to a temporary file beside it, fsynced,
    renamed over it (a full disk or a kill leaves the old file, never a partial one)."""
    tmp = f"{os.fspath(path)}.tmp.{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    fsync_path(os.path.dirname(os.path.abspath(path)))


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a local file or directory (a directory: so the entries it names survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(root: str, keys: list[str]) -> None:
    """fsync every file under root/key for each key, those directories, and the directories naming
    them up to `root` (local disk only: object stores and memory:// are durable once a write
    returns)."""
    root = os.path.normpath(root)
    dirs: set[str] = set()
    for key in keys:
        top = os.path.join(root, key)
        for d, _, files in os.walk(top):
            dirs.add(d)
            for name in files:
                fsync_path(os.path.join(d, name))
        d = os.path.dirname(top)
        while len(d) >= len(root):  # the new directories' entries, up to the root
            dirs.add(d)
            d = os.path.dirname(d)
    for d in sorted(dirs, key=len, reverse=True):
        fsync_path(d)
