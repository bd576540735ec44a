"""The processes of a distributed run, on JAX's multi-process runtime (`jax.distributed`).

Coordination (barriers with timeouts, failure detection by heartbeats) comes from JAX's
coordination service; summing relation parameters across processes uses its CPU collectives
(gloo). Partitions travel through the shared TensorStore checkpoint, never through this module.
A single-process run gets the same interface with no-op methods.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import jax
import numpy as np

from jgraph.config import DistributedConfig

log = logging.getLogger("jgraph")


def bind_address(coordinator: str) -> str:
    """Where process 0's coordination service listens: $JAX_COORDINATOR_BIND_ADDRESS if set (an
    explicit choice, e.g. "[::]:PORT"), else `coordinator` itself (host:port), so a
    "localhost:PORT" coordinator (the launcher's) is reachable from this machine only. (JAX's own
    default is "[::]:PORT": every interface.)"""
    explicit = os.environ.get("JAX_COORDINATOR_BIND_ADDRESS")
    if explicit:
        return explicit
    return coordinator


class ClusterError(RuntimeError):
    """Another process died, hung, or could not be reached; the run stops with this message."""


class Cluster:
    def __init__(self, cfg: DistributedConfig) -> None:
        self.size = int(cfg.num_processes)
        self.rank = int(cfg.process_id)
        self.timeout_s = float(cfg.timeout_s)
        if not 0 <= self.rank < self.size:
            raise ValueError(f"distributed.process_id must be in [0, {self.size}), got {self.rank}")
        self._client = None
        if self.size > 1:
            jax.config.update("jax_cpu_collectives_implementation", "gloo")
            try:
                jax.distributed.initialize(
                    cfg.coordinator, self.size, self.rank,
                    coordinator_bind_address=bind_address(cfg.coordinator),
                    initialization_timeout=int(cfg.timeout_s),
                    heartbeat_timeout_seconds=int(cfg.heartbeat_s),
                    shutdown_timeout_seconds=int(min(cfg.timeout_s, 30)),
                )
            except Exception as e:  # noqa: BLE001  (jax raises several types here)
                raise ClusterError(
                    f"process {self.rank}/{self.size} could not join the coordinator at "
                    f"{cfg.coordinator} within {cfg.timeout_s:.0f}s: {e}") from None
            from jax._src import distributed as jd

            self._client = jd.global_state.client
            log.info("process %d of %d joined %s", self.rank, self.size, cfg.coordinator)

    @property
    def primary(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    def barrier(self, name: str) -> None:
        """Wait until every process arrives at `name`; a process that is dead or stuck for longer
        than distributed.timeout_s makes this raise ClusterError in every other process."""
        if self._client is None:
            return
        try:
            self._client.wait_at_barrier(name, int(self.timeout_s * 1000))
        except Exception as e:  # noqa: BLE001
            first = str(e).splitlines()[:2]
            raise ClusterError(
                f"process {self.rank}: not every process reached {name!r} within {self.timeout_s:.0f}s "
                f"(another process died or hangs; restart the job to resume from the last committed "
                f"checkpoint): {' '.join(first)}") from None

    def allsum(self, tree: Any) -> Any:
        """Sum of a pytree of arrays over all processes (every process gets the sum)."""
        if not self.distributed:
            return tree
        from jax.experimental import multihost_utils

        leaves, treedef = jax.tree_util.tree_flatten(tree)
        try:
            gathered = multihost_utils.process_allgather([np.asarray(x) for x in leaves])
        except Exception as e:  # noqa: BLE001
            raise ClusterError(f"process {self.rank}: summing parameters across processes failed: {e}") \
                from None
        return jax.tree_util.tree_unflatten(treedef, [np.asarray(g).sum(axis=0) for g in gathered])

    def shutdown(self) -> None:
        if self._client is not None:
            try:
                jax.distributed.shutdown()
            except Exception:  # noqa: BLE001  (peers may be gone already)
                pass
            self._client = None
