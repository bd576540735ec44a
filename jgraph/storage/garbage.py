"""Clean-up of a checkpoint location: the data no manifest names, of versions up to the committed
one. Run only by the process holding the location's lock (see checkpoint.py, lock.py); data of a
newer version is never touched (another process's writes before their commit)."""

from __future__ import annotations

import json
import os
import re
import shutil
from typing import Any

import tensorstore as ts

from jgraph.storage import kv


def referenced(store: ts.KvStore, manifest: dict[str, Any] | None) -> set[str]:
    """The table and parameter keys named by `manifest` or by a preserved snapshot."""
    keys: set[str] = set()
    manifests = [manifest] if manifest else []
    for k in store.list(ts.KvStore.KeyRange("snapshots/", "snapshots0")).result():
        r = store.read(k).result()
        if r.state == "value":
            manifests.append(json.loads(r.value))
    for m in manifests:
        for parts in m.get("tables", {}).values():
            keys.update(parts.values())
        if m.get("params"):
            keys.add(m["params"])
    return keys


def key_version(key: str) -> int:
    """N of a table key tables/{type}/{part}/v{N} or a parameter key params/v{N}.npz."""
    return int(re.search(r"/v(\d+)", key).group(1))


def unreferenced(store: ts.KvStore, keep: set[str], version: int) -> tuple[set[str], set[str]]:
    """(table prefixes, parameter keys) of versions <= `version` not in `keep`."""
    prefixes: set[str] = set()
    for raw in store.list(ts.KvStore.KeyRange("tables/", "tables0")).result():
        m = re.match(r"(tables/[^/]+/[^/]+/v(\d+))/", raw.decode())
        if m and m.group(1) not in keep and int(m.group(2)) <= version:
            prefixes.add(m.group(1))
    params: set[str] = set()
    for raw in store.list(ts.KvStore.KeyRange("params/", "params0")).result():
        key = raw.decode()
        m = re.fullmatch(r"params/v(\d+)\.npz", key)
        if m and key not in keep and int(m.group(1)) <= version:
            params.add(key)
    return prefixes, params


def collect(store: ts.KvStore, url: str, manifest: dict[str, Any] | None, version: int) -> None:
    """Delete what `unreferenced` finds, given the committed `manifest` of `version`."""
    prefixes, params = unreferenced(store, referenced(store, manifest), version)
    for key in params:
        store.delete_range(ts.KvStore.KeyRange(key, key + "\0")).result()
    for p in prefixes:
        store.delete_range(ts.KvStore.KeyRange(p + "/", p + "0")).result()
        if kv.is_local(url):  # the file kvstore leaves empty directories behind
            shutil.rmtree(os.path.join(kv.local_path(url), p), ignore_errors=True)
