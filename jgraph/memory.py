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


def reset_peak_rss() -> bool:
    """Lower the peak that peak_rss_mib reports to the present RSS (Linux: writes 5 to
    /proc/self/clear_refs), so a benchmark row's peak is its own, not its predecessors'. False
    where that is not possible (peak_rss_mib then stays the process's lifetime peak)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


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


_HUGE = 1 << 21  # bytes in an x86-64 / arm64 transparent huge page
_MADV_DONTNEED, _MADV_HUGEPAGE, _MADV_POPULATE_WRITE = 4, 14, 23


def back_with_huge_pages(array) -> bool:
    """Ask Linux to back a freshly made, still all-zero CPU jax array with 2 MiB pages.

    The whole-page part of the buffer is marked MADV_HUGEPAGE and its zero pages dropped
    (MADV_DONTNEED: anonymous memory reads back as zeros), so the first writes fault it in as huge
    pages. Row gathers and scatters on a large working table miss the TLB on almost every row with
    4 KiB pages: with 2 MiB pages a d=400 training step runs about 15% faster (1M rows, 1.6 GB).
    Returns False, changing nothing, where that is not possible (not Linux or not glibc, not host
    memory, smaller than a huge page). Call it only before anything is written to `array`.
    """
    if _LIBC is None or not hasattr(_LIBC, "madvise"):
        return False
    try:
        if any(d.platform != "cpu" for d in array.devices()):
            return False
        ptr, n = array.unsafe_buffer_pointer(), array.nbytes
    except Exception:  # noqa: BLE001  (not a single-buffer jax array)
        return False
    import ctypes

    start, end = -(-ptr // _HUGE) * _HUGE, (ptr + n) // _HUGE * _HUGE
    if end - start < _HUGE:
        return False
    addr, size = ctypes.c_void_p(start), ctypes.c_size_t(end - start)
    if _LIBC.madvise(addr, size, _MADV_HUGEPAGE) != 0:
        return False
    if _LIBC.madvise(addr, size, _MADV_DONTNEED) != 0:
        return False
    # fault the huge pages in from another thread (finding free 2 MiB pages can take the kernel
    # seconds per GB): MADV_POPULATE_WRITE changes no byte, so it may race the first writes
    threading.Thread(target=_populate, args=(start, end), daemon=True,
                     name="jgraph-huge-pages").start()
    return True


def _populate(start: int, end: int, step: int = 64 << 20) -> None:
    import ctypes

    for a in range(start, end, step):
        size = min(step, end - a)
        if _LIBC.madvise(ctypes.c_void_p(a), ctypes.c_size_t(size), _MADV_POPULATE_WRITE) != 0:
            return  # before Linux 5.14: the first writes fault them in instead


# ---------------------------------------------------------------- the partition buffer's memory model
IN_FLIGHT = 4  # partition copies a prefetching run holds beside its slots: the next bucket's reads
#                (at most 2) and the background writes (CheckpointStore max_pending_writes = 2)


def partition_bytes(capacity: int, dimension: int, itemsize: int = 4) -> tuple[int, int]:
    """(bytes of one working-table slot, bytes of one host copy) of a partition of `capacity`
    rows: a slot holds emb [M, D] + acc float32 [M] + owner int32 [M], a copy emb + acc."""
    return capacity * (dimension * itemsize + 8), capacity * (dimension * itemsize + 4)


def buffer_memory(slot_bytes: int, copy_bytes: int, buffer: int, in_flight: int = IN_FLIGHT) -> int:
    """Bytes of a partition buffer of `buffer` slots (slot_bytes: one slot of every partitioned
    type together) plus `in_flight` partition copies (0 without prefetching). A training run's
    peak RSS ~ this + its unpartitioned tables + a fixed overhead (runtime, compiled step, edge
    batches: `benchmarks/partitions.py --fixed` measures it)."""
    return buffer * slot_bytes + in_flight * copy_bytes


def buffer_for_budget(budget_bytes: float, slot_bytes: int, copy_bytes: int, num_partitions: int,
                      in_flight: int = IN_FLIGHT) -> int:
    """The most slots B (2 <= B <= num_partitions) whose `buffer_memory` fits `budget_bytes`
    (storage.buffer_memory_gb); 2 where not even two fit."""
    b = int((budget_bytes - in_flight * copy_bytes) // max(slot_bytes, 1))
    return max(2, min(b, num_partitions))
