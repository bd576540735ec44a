"""Distributed parameter averaging (train/scheduler.DistributedScheduler) against numpy: three
processes, simulated by threads over a cluster whose allsum adds what each one hands in, end
rounds after changing their relation parameters and Adagrad accumulators by their own amounts; every
process must then hold the round's starting values plus the mean of all processes' changes (a
process that waited the round counts with a zero change), in float64 numpy, and start the next
round from there."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import jax
import numpy as np
from helpers import model_of

from jgraph.core.step import init_state
from jgraph.train.scheduler import DistributedScheduler

N = 3  # processes: the mean divides by 3, not by the 2 buckets a round trains


class ThreadCluster:
    """The Cluster interface for N threads of one process: allsum waits for all N trees."""

    def __init__(self, rank: int, shared: dict) -> None:
        self.rank, self.size, self.shared = rank, N, shared
        self.primary, self.distributed = rank == 0, True

    def allsum(self, tree):
        s = self.shared
        s["in"][self.rank] = tree
        s["barrier"].wait()
        total = jax.tree_util.tree_map(lambda *xs: sum(np.asarray(x, np.float64) for x in xs),
                                       *[s["in"][r] for r in range(N)])
        s["barrier"].wait()  # everyone has read before the next round writes
        return total


def _scheduler(rank: int, shared: dict) -> DistributedScheduler:
    layout = SimpleNamespace(types=[SimpleNamespace(name="entity", num_partitions=4)],
                             bucket_parts=lambda t, b: set(b))
    checkpoint = SimpleNamespace(since_commit=0, commit_shared=lambda *a: None)
    table = SimpleNamespace(write_resident=lambda keep=None: None)
    return DistributedScheduler(SimpleNamespace(), layout, ThreadCluster(rank, shared), checkpoint, table)


def _flat(state) -> list[np.ndarray]:
    return [np.asarray(x, np.float64) for x in jax.tree_util.tree_leaves((state.params, state.opt_state))]


def test_round_end_applies_the_mean_of_every_process_change():
    model = model_of(dimension=6, operator_of_relation=["diagonal", "translation", "linear"],
                     relation_types=np.zeros((3, 2)))
    start = init_state(model, 0, "threefry", 0.1, 1e-8)
    shared = {"in": {}, "barrier": threading.Barrier(N)}
    rng = np.random.default_rng(0)
    leaves, treedef = jax.tree_util.tree_flatten((start.params, start.opt_state))
    float_leaves = [i for i, x in enumerate(leaves) if np.issubdtype(np.asarray(x).dtype, np.floating)]
    # per round, per process: a change of each float leaf (process 2 waits in round 0: no change)
    deltas = [[{i: rng.normal(size=np.shape(leaves[i])) * (r + 1) * (0 if (k, r) == (0, 2) else 1)
                for i in float_leaves} for r in range(N)] for k in range(2)]
    got: dict[int, list] = {}
    errors = []

    def process(rank: int) -> None:
        try:
            sched = _scheduler(rank, shared)
            state = start
            sched.start(state)
            for k in range(2):
                cur = jax.tree_util.tree_leaves((state.params, state.opt_state))
                moved = [np.asarray(x) + deltas[k][rank][i].astype(np.float32) if i in deltas[k][rank]
                         else x for i, x in enumerate(cur)]
                params, opt_state = jax.tree_util.tree_unflatten(treedef, moved)
                buckets = [(0, 1), (2, 3), None]  # process 2 has no bucket in a round of 4 partitions
                state = sched.end_round(state._replace(params=params, opt_state=opt_state), buckets, k,
                                        0, 0, k == 1)
                got.setdefault(rank, []).append(_flat(state))
        except BaseException as e:  # noqa: BLE001  (reported by the main thread)
            errors.append(e)
            shared["barrier"].abort()

    threads = [threading.Thread(target=process, args=(r,)) for r in range(N)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    want = [np.asarray(x, np.float64) for x in leaves]
    for k in range(2):
        want = [w + sum(deltas[k][r][i].astype(np.float32) for r in range(N)) / N if i in deltas[k][0]
                else w for i, w in enumerate(want)]
        for rank in range(N):
            for i in float_leaves:
                np.testing.assert_allclose(got[rank][k][i], want[i], rtol=1e-5, atol=1e-6,
                                           err_msg=f"round {k}, process {rank}, leaf {i}")
    # the changes were not all alike: each process's own values differ from the mean before it
    assert not np.allclose(deltas[0][0][float_leaves[0]], deltas[0][1][float_leaves[0]])
