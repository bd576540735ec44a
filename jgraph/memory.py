"""This process's memory: peak RSS as the benchmarks and run metrics report it, aligned and reused
host buffers for partition swaps, and glibc malloc tuning."""

from __future__ import annotations

import resource
import threading

import numpy as np

ALIGN = 64  # bytes: XLA's CPU client aliases (does not copy) a host array aligned to this


def peak_rss_mib() -> float:
    """Peak resident memory in MiB: VmHWM (Linux), else ru_maxrss. (ru_maxrss of a child started
    by fork/vfork + exec also counts the parent's memory at the fork.)"""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def aligned_empty(shape: tuple[int, ...], dtype, align: int = ALIGN) -> np.ndarray:
    """An uninitialised C-order array whose data starts at a multiple of `align` bytes.

    numpy aligns to 16 bytes; jax.device_put on the CPU copies such an array (about 25 ms for a
    48 MB partition, on the trainer's critical path) but aliases a 64-byte aligned one for free."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return _view(np.empty(nbytes + align, np.uint8), shape, dtype, align)


def _view(raw: np.ndarray, shape: tuple[int, ...], dtype: np.dtype, align: int) -> np.ndarray:
    off = -raw.ctypes.data % align
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    return raw[off : off + nbytes].view(dtype).reshape(shape)


class HostBuffers:
    """A few reusable aligned host buffers for partition-sized copies (swaps and their IO).

    Fresh memory costs a page fault per 4 KiB on first touch: about 20 ms for a 48 MB partition
    on the 2-core benchmark VM while training runs, more than copying it (4 ms). A swap takes a
    buffer for the rows it writes out and one for the rows it reads in, and gives both back when
    done, so steady swapping touches no fresh memory. At most `keep` free buffers are kept.
    Thread-safe. `give` only takes back arrays from `take` that the caller no longer uses."""

    def __init__(self, keep: int = 4, align: int = ALIGN) -> None:
        self.keep, self.align = keep, align
        self._free: list[np.ndarray] = []  # raw uint8 buffers
        self._lock = threading.Lock()

    def take(self, shape: tuple[int, ...], dtype) -> np.ndarray:
        """An uninitialised aligned array of `shape` and `dtype` (a reused buffer when one fits)."""
        dtype = np.dtype(dtype)
        size = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize + self.align
        with self._lock:
            i = next((i for i, b in enumerate(self._free) if b.nbytes == size), None)
            raw = self._free.pop(i) if i is not None else np.empty(size, np.uint8)
        return _view(raw, shape, dtype, self.align)

    def give(self, arr: np.ndarray) -> None:
        """Return an array from `take` for reuse."""
        raw = arr.base
        if raw is None or raw.dtype != np.uint8 or raw.ndim != 1:
            return
        with self._lock:
            if len(self._free) < self.keep and all(b is not raw for b in self._free):
                self._free.append(raw)

    def clear(self) -> None:
        with self._lock:
            self._free.clear()


def _libc():
    try:
        import ctypes

        return ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, musl): nothing to tune
        return None


_LIBC = _libc()
_M_MMAP_THRESHOLD = -3


def return_large_frees(threshold: int = 1 << 20) -> None:
    """Serve allocations of `threshold` bytes or more by mmap, so freeing them returns the memory to
    the system at once. glibc otherwise raises this threshold after each large free (up to 32 MiB)
    and keeps freed IO buffers and partition copies in its heaps: the resident memory of a
    partitioned run then grows by several partitions it no longer holds."""
    if _LIBC is not None and hasattr(_LIBC, "mallopt"):
        _LIBC.mallopt(_M_MMAP_THRESHOLD, threshold)


def trim() -> None:
    """Give freed heap memory back to the system (glibc malloc_trim; a no-op elsewhere)."""
    if _LIBC is not None and hasattr(_LIBC, "malloc_trim"):
        _LIBC.malloc_trim(0)
