"""The one-writer lock of a checkpoint location: an owner record, taken and renewed as a lease.

The record is one object, `checkpoint.lock`, beside the manifest: {host, boot, pid, start, token,
renewed, lease}. It is created and replaced only by conditional writes (TensorStore's `if_equal` on
the object's generation), so of two processes taking it at once exactly one wins, on local disk and
on object stores alike. The owner renews it every `lease / 4` seconds from a daemon thread and
deletes it on release.

A record left by an owner that is gone is taken over only when that is provable:
- same host (name and boot id): the pid is not running, is a zombie, or runs a process started at
  another time (a reused pid);
- same host name, another boot id: the machine restarted since;
- another host: the lease expired (no renewal for `lease` seconds), the only evidence an object store
  or a shared filesystem gives.
Anything else is a live owner: the caller gets a `LockHeld` naming it, at once.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

import tensorstore as ts

from jgraph.storage.kv import CheckpointError

LOCK = "checkpoint.lock"
LEASE_SECONDS = 300.0


class LockHeld(CheckpointError):
    """Another live process owns the checkpoint location (or took it over from this one)."""


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_start(pid: int) -> str | None:
    """A token of when process `pid` started (clock ticks since boot, from /proc); None if no such
    process is running (a zombie counts as gone), "" where /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return None
    except OSError:
        return ""
    if fields[0] in ("Z", "X"):  # state: zombie or dead, waiting to be reaped
        return None
    return fields[19]  # field 22 of stat, counted after the command name


def _alive(pid: int, start: str) -> bool:
    now = process_start(pid)
    if now is None:
        return False
    if now == "":  # no /proc: fall back to "a process with this pid exists"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return now == start


def owner_record(lease: float = LEASE_SECONDS) -> dict[str, Any]:
    pid = os.getpid()
    return {"host": socket.gethostname(), "boot": _boot_id(), "pid": pid,
            "start": process_start(pid) or "", "token": uuid.uuid4().hex, "renewed": time.time(),
            "lease": lease}


def owner_gone(rec: dict[str, Any], now: float | None = None) -> bool:
    """Whether the owner of lock record `rec` provably no longer runs (see the module docstring)."""
    if rec.get("host") == socket.gethostname():
        if rec.get("boot") != _boot_id():
            return True
        return not _alive(int(rec.get("pid", -1)), str(rec.get("start", "")))
    now = time.time() if now is None else now
    return now - float(rec.get("renewed", 0)) > float(rec.get("lease", LEASE_SECONDS))


def describe(rec: dict[str, Any]) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(rec.get("renewed", 0))))
    return f"pid {rec.get('pid')} on {rec.get('host')} (lock renewed {started})"


class CheckpointLock:
    """The lock record of the location `url` held by this process (see the module docstring)."""

    def __init__(self, kv: ts.KvStore, url: str, lease: float = LEASE_SECONDS) -> None:
        self.kv, self.url, self.lease = kv, url, lease
        self.record: dict[str, Any] | None = None
        self._generation: bytes | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()
        self.lost: str | None = None  # why the lock was lost while held

    def _read(self) -> tuple[dict[str, Any] | None, bytes]:
        r = self.kv.read(LOCK).result()
        if r.state != "value":
            return None, r.stamp.generation
        try:
            rec = json.loads(r.value.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            rec = {"host": "?", "pid": "?", "renewed": 0, "lease": 0}  # unreadable: expired
        return rec, r.stamp.generation

    def _put(self, rec: dict[str, Any], if_equal: bytes) -> bytes | None:
        """Write `rec` if the lock object is still at generation `if_equal`; its new generation,
        or None if another process changed it first."""
        data = json.dumps(rec, sort_keys=True).encode("utf-8")
        try:
            gen = self.kv.write(LOCK, data, if_equal=if_equal).result().generation
        except ValueError as e:
            raise CheckpointError(f"{self.url}: cannot write {LOCK} (is the location writable?): "
                                  f"{str(e).splitlines()[0]}") from None
        return gen or None

    def acquire(self) -> None:
        """Take the lock or raise LockHeld naming its live owner (CheckpointError: not writable)."""
        if self.record is not None:
            return
        rec = owner_record(self.lease)
        for _ in range(5):  # each round loses only to another process's successful write
            old, gen = self._read()
            if old is not None and not owner_gone(old):
                raise LockHeld(f"{self.url}: checkpoint in use by {describe(old)}; one writer at "
                               f"a time (it is free again once that process ends)")
            new = self._put(rec, gen)
            if new is not None:
                self.record, self._generation, self.lost = rec, new, None
                self._stop.clear()
                self._thread = threading.Thread(target=self._renew_loop, daemon=True,
                                                name="jgraph-lock")
                self._thread.start()
                return
        raise LockHeld(f"{self.url}: checkpoint lock contended by other processes; try again")

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.lease / 4):
            try:
                self.renew()
            except Exception as e:  # noqa: BLE001 - reported at the next commit
                self.lost = self.lost or f"renewing the lock failed: {e}"

    def renew(self) -> None:
        with self._mutex:
            if self.record is None or self.lost:
                return
            rec = dict(self.record, renewed=time.time())
            gen = self._put(rec, self._generation or b"")
            if gen is None:
                other, _ = self._read()
                self.lost = f"taken over by {describe(other) if other else 'a process that released it'}"
                return
            self.record, self._generation = rec, gen

    def check(self) -> None:
        """Raise LockHeld unless this process still owns the lock (before a commit)."""
        if self.record is None:
            raise LockHeld(f"{self.url}: writing without the checkpoint lock")
        if not self.lost:
            rec, _ = self._read()
            if rec is None or rec.get("token") != self.record["token"]:
                self.lost = f"taken over by {describe(rec)}" if rec else "lock object deleted"
        if self.lost:
            raise LockHeld(f"{self.url}: this process lost the checkpoint lock ({self.lost}); "
                           "nothing more is committed")

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        with self._mutex:
            if self.record is not None and not self.lost:
                try:
                    self.kv.write(LOCK, None, if_equal=self._generation or b"").result()
                except ValueError:
                    pass  # the location went away or read-only: the record is stale, taken over later
            self.record = None
