"""Bounded thread pipelines for the importer's passes: an ordered map over a few worker threads
(numpy/numba work that releases the GIL) and a read-ahead thread (file reads off the caller's
thread). Nothing here knows about edges."""

from __future__ import annotations

import collections
import queue
import threading
from concurrent.futures import ThreadPoolExecutor


def ordered_map(fn, items, workers: int = 2, depth: int = 3):
    """Yield fn(item) for each item in order, up to `depth` computed at once by `workers` threads
    (items are drawn here, in the caller's thread). For numpy/numba work that releases the GIL."""
    pool = ThreadPoolExecutor(workers, thread_name_prefix="jgraph-import-map")
    pending: collections.deque = collections.deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


def readahead(items, depth: int = 2):
    """Yield the items of an iterable drawn `depth` ahead by a thread (file reads off the
    caller's thread)."""
    q: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    done = object()

    def draw() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((item, None))
            q.put((done, None))
        except BaseException as e:  # handed to the caller
            q.put((None, e))

    th = threading.Thread(target=draw, daemon=True, name="jgraph-import-readahead")
    th.start()
    try:
        while True:
            item, err = q.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
        while th.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get(timeout=0.05)
            except queue.Empty:
                pass
        th.join()
