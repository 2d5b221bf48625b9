"""How many captures a batch runs at once by default, from this machine's cores and memory (docs/batch.md).

A capture spends most of its wall time waiting on the browser (loading, the quiet window, painting), not on a
core of its own: on the 2-core development machine, 2 captures at once left the cores half idle and 4 nearly
doubled the pages per minute; beyond that the cores are full and pages/min stop growing while memory keeps
growing (docs/batch.md, "Speed and memory"). So: two captures per core, at most what the memory available now
holds at ``MEMORY_PER_CAPTURE`` each beside ``MEMORY_BASE`` for the browser, driver and Python, never fewer
than one, and at most ``MAX_DEFAULT``.
"""

from __future__ import annotations

import os

CAPTURES_PER_CORE = 2
# Measured peak PSS of the whole tree (benchmarks/bench_batch.py --site demo): the browser, driver and Python
# take about 450 MB; each capture in flight adds its renderer and bodies, under 150 MB on feed pages.
MEMORY_BASE = 450 * 1024 * 1024
MEMORY_PER_CAPTURE = 150 * 1024 * 1024
MAX_DEFAULT = 16


def available_memory() -> int | None:
    """Bytes of memory available to new work now (Linux MemAvailable, else free pages), or None when unknown."""
    try:
        with open("/proc/meminfo", encoding="ascii") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS says, else the machine's)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_concurrency(cpu: int | None = None, memory: int | None = None) -> int:
    """Captures at once when the user gives no --concurrency: two per core, as far as the memory allows."""
    by_cpu = CAPTURES_PER_CORE * (cpu if cpu is not None else cores())
    free = memory if memory is not None else available_memory()
    by_memory = by_cpu if free is None else max(1, (free - MEMORY_BASE) // MEMORY_PER_CAPTURE)
    return int(max(1, min(by_cpu, by_memory, MAX_DEFAULT)))
