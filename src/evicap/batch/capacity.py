"""How many captures a batch runs at once by default, from this machine's cores and memory (docs/batch.md).

A capture spends most of its wall time waiting on the browser (loading, the quiet window, the profile's
scrolling, painting), not on a core of its own. On the 2-core development machine, 100 demo pages
(benchmarks/bench_batch.py --site demo) ran at about 108 pages/min with 4 captures at once, 133 with 6 and 135 with
8, while each capture in flight added 25-50 MB of PSS: three per core is where the pages per minute stop growing
(docs/batch.md, "The default concurrency, and why"). So: three captures per core, at most what the memory
available now holds at ``MEMORY_PER_CAPTURE`` each beside ``MEMORY_BASE`` for the browser, driver and Python,
never fewer than one, and at most ``MAX_DEFAULT``.
"""

from __future__ import annotations

import os

from evicap.machine import cores

CAPTURES_PER_CORE = 3
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


def default_concurrency(cpu: int | None = None, memory: int | None = None) -> int:
    """Captures at once when the user gives no --concurrency: three per core, as far as the memory allows."""
    by_cpu = CAPTURES_PER_CORE * (cpu if cpu is not None else cores())
    free = memory if memory is not None else available_memory()
    by_memory = by_cpu if free is None else max(1, (free - MEMORY_BASE) // MEMORY_PER_CAPTURE)
    return int(max(1, min(by_cpu, by_memory, MAX_DEFAULT)))
