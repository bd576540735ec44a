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


def fsync_path(path: str | os.PathLike) -> None:
    """fsync a local file or directory (a directory: so the entries it names survive a crash)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
