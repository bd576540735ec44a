"""Issue 24 items 9 and 13 (launcher): the coordination service listens where the coordinator
address says (loopback for the launcher's localhost), and the launcher gives survivors longer than
the heartbeat to report a dead peer themselves, then names each process it kills."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time

from jgraph.cli.launch import Supervisor, free_port, grace_for
from jgraph.train.cluster import bind_address


def listeners(port: int) -> list[str]:
    """Local addresses (hex, as /proc/net/tcp{,6} write them) of sockets listening on `port`."""
    found = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(name) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                addr, p = local.rsplit(":", 1)
                if state == "0A" and int(p, 16) == port:
                    found.append(addr)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000",  # 127.0.0.1, ::1
            "0000000000000000FFFF00000100007F"}  # ::ffff:127.0.0.1
ANY = {"00000000", "00000000000000000000000000000000"}


def test_bind_address_is_the_coordinator_unless_set(monkeypatch):
    monkeypatch.delenv("JAX_COORDINATOR_BIND_ADDRESS", raising=False)
    assert bind_address("localhost:1234") == "localhost:1234"
    assert bind_address("10.1.2.3:99") == "10.1.2.3:99"
    monkeypatch.setenv("JAX_COORDINATOR_BIND_ADDRESS", "[::]:1234")
    assert bind_address("localhost:1234") == "[::]:1234"


def test_the_coordination_service_listens_on_loopback_only():
    """Process 0 of 2 (the other never comes): while it waits, its service's socket is bound to
    the loopback address, not to every interface (JAX's default)."""
    port = free_port()
    code = ("from jgraph.config import DistributedConfig; from jgraph.train.cluster import Cluster; "
            f"Cluster(DistributedConfig(num_processes=2, process_id=0, coordinator='localhost:{port}', "
            "timeout_s=60))")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COORDINATOR_BIND_ADDRESS"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while not listeners(port):
            assert proc.poll() is None, proc.stderr.read()[-2000:]
            assert time.time() < deadline, "the coordination service never listened"
            time.sleep(0.1)
        addrs = listeners(port)
        assert not set(addrs) & ANY, f"listening on every interface: {addrs}"
        assert set(addrs) <= LOOPBACK, addrs
    finally:
        proc.kill()
        proc.wait()


class FakeProcess:
    def __init__(self, pid: int, code: int | None = None) -> None:
        self.pid, self.returncode, self.killed = pid, code, False

    def poll(self) -> int | None:
        return self.returncode

    def kill(self) -> None:
        self.killed, self.returncode = True, -9


def test_survivors_get_longer_than_the_heartbeat_then_are_killed_by_name():
    assert grace_for(60.0) > 60.0 and grace_for(5.0) > 5.0
    out = io.StringIO()
    procs = [FakeProcess(100), FakeProcess(101, code=1), FakeProcess(102)]
    watch = Supervisor(procs, grace_for(60.0), out)
    assert watch.step(0.0)
    assert watch.code == 1 and "process 1 exited with 1" in out.getvalue()
    assert watch.step(60.0) and not procs[0].killed  # the heartbeat has not even expired yet
    procs[2].returncode = 1  # process 2 reports the dead peer itself (the barrier error)
    assert watch.step(61.0)
    assert not watch.step(grace_for(60.0) + 1)
    assert procs[0].killed and not procs[2].killed
    assert "killed process 0 (pid 100)" in out.getvalue() and "killed process 2" not in out.getvalue()
