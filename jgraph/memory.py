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
