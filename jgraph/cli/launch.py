"""`python -m jgraph.cli.launch -n N [options] -- [train overrides]`: N training processes on this machine.

For trying distributed training and for tests: starts N copies of `python -m jgraph.train` with
distributed.num_processes=N, a process_id each, one coordinator address and one shared checkpoint
directory, prefixes their output with the process id, and, when one fails, gives the others time to
stop on their own with the barrier error (longer than the heartbeat that detects the dead process),
then kills those left, saying which, and fails. The coordinator listens on the loopback address
only (jgraph.train.cluster.bind_address). On several machines, run `python -m jgraph.train`
yourself on each, with JGRAPH_NUM_PROCESSES, JGRAPH_PROCESS_ID and JGRAPH_COORDINATOR (or the
distributed.* keys) set and storage.checkpoint_dir on storage every machine reaches.

    python -m jgraph.cli.launch -n 2 -- entities.entity.num_partitions=4 training.num_epochs=5
    python -m jgraph.cli.launch -n 4 --dir runs/lj -- +experiment=livejournal entities.entity.num_partitions=8
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from jgraph.cli.main import run_command
from jgraph.errors import command_parser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pump(rank: int, stream, out) -> None:
    for line in iter(stream.readline, ""):
        out.write(f"[{rank}] {line}")
        out.flush()


class Supervisor:
    """Watches the N processes: the first to fail sets the job's exit code; the others get
    `grace_s` to stop on their own (it must exceed the heartbeat, so each reports the dead peer
    itself), then are killed with a line naming each."""

    def __init__(self, procs: list, grace_s: float, out) -> None:
        self.procs, self.grace_s, self.out = procs, grace_s, out
        self.code, self.failed, self.failed_at = 0, None, None

    def step(self, now: float) -> bool:
        """Check once; whether any process still runs."""
        for r, p in enumerate(self.procs):
            if p.poll() not in (None, 0) and self.failed is None:
                self.code, self.failed, self.failed_at = p.returncode, r, now
                self.out.write(f"[launch] process {r} exited with {p.returncode}; the others get "
                               f"{self.grace_s:.0f}s to stop on their own\n")
        if self.failed_at is not None and now - self.failed_at > self.grace_s:
            for r, p in enumerate(self.procs):
                if p.poll() is None:
                    p.kill()
                    self.out.write(f"[launch] killed process {r} (pid {p.pid}): still running "
                                   f"{self.grace_s:.0f}s after process {self.failed} failed\n")
        return any(p.poll() is None for p in self.procs)


def grace_for(heartbeat_s: float) -> float:
    """How long survivors get: past the heartbeat timeout that tells them a peer is dead."""
    return 1.5 * heartbeat_s + 15.0


def launch(n: int, overrides: list[str], run_dir: str, port: int | None = None, timeout_s: float = 600,
           grace_s: float | None = None, out=None, heartbeat_s: float = 60.0) -> int:
    """Run N processes to the end; returns 0, or the first failing process's exit code."""
    out = out or sys.stdout
    port = port or free_port()
    base = Path(run_dir)
    base.mkdir(parents=True, exist_ok=True)
    for o in overrides:
        if o.startswith("distributed.heartbeat_s="):
            heartbeat_s = float(o.split("=", 1)[1])
    grace_s = grace_for(heartbeat_s) if grace_s is None else grace_s
    common = [f"distributed.num_processes={n}", f"distributed.coordinator=localhost:{port}",
              f"distributed.timeout_s={timeout_s}", f"distributed.heartbeat_s={heartbeat_s}"]
    if not any(o.startswith("storage.checkpoint_dir=") for o in overrides):
        common.append(f"storage.checkpoint_dir={base / 'checkpoint'}")
    procs, pumps = [], []
    for r in range(n):
        rank_dir = base if r == 0 else base / f"process{r}"
        cmd = [sys.executable, "-m", "jgraph.train", *overrides, *common, f"distributed.process_id={r}",
               f"hydra.run.dir={rank_dir}"]
        if r:
            cmd.append("training.progress=false")
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(p)
        t = threading.Thread(target=_pump, args=(r, p.stdout, out), daemon=True)
        t.start()
        pumps.append(t)
    watch = Supervisor(procs, grace_s, out)
    while watch.step(time.time()):
        time.sleep(0.2)
    for t in pumps:
        t.join(timeout=5)
    return watch.code or next((p.returncode for p in procs if p.returncode), 0)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        i = argv.index("--")
        ours, overrides = argv[:i], argv[i + 1 :]
    else:
        ours, overrides = argv, []
    p = command_parser("python -m jgraph.cli.launch", __doc__)
    p.add_argument("-n", "--num-processes", type=int, required=True)
    p.add_argument("--dir", default=None, help="run directory (default outputs/launch/<date>)")
    p.add_argument("--port", type=int, default=None, help="coordinator port (default: a free one)")
    p.add_argument("--timeout", type=float, default=600.0, help="distributed.timeout_s")
    p.add_argument("--heartbeat", type=float, default=60.0, help="distributed.heartbeat_s")
    args = p.parse_args(ours)
    if args.num_processes < 1:
        p.error(f"-n must be >= 1, got {args.num_processes}")
    run_dir = args.dir or time.strftime("outputs/launch/%Y-%m-%d_%H-%M-%S")
    return launch(args.num_processes, overrides, run_dir, args.port, args.timeout,
                  heartbeat_s=args.heartbeat)


if __name__ == "__main__":
    sys.exit(run_command("python -m jgraph.cli.launch", main))
