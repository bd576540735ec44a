"""This process's memory, as the benchmarks and run metrics report it."""

from __future__ import annotations

import resource


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
