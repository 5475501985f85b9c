"""How many BLAS threads a run uses: the cores this process may really use, shared with
the other jobs a launcher runs next to it.

OpenBLAS threads spin while they wait: more threads than free cores made an lret run
1.9x slower next to one busy process (``benchmarks/bench_threads.py``), and much slower
in parallel sweeps. So the default is the cores available to the process (its CPU
affinity, capped by a cgroup CPU quota), less the cores other processes keep busy when
the run starts (sampled for 50 ms), divided by the jobs that run at once
(``LRET_PARALLEL_JOBS``, set by the sweep for the joblib launcher), at least one;
``backend.threads`` overrides it. Load that starts later is not seen.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

PARALLEL_ENV = "LRET_PARALLEL_JOBS"  # jobs that run at once on this machine (a sweep sets it)
_CGROUP_V2 = Path("/sys/fs/cgroup/cpu.max")
_CGROUP_V1 = Path("/sys/fs/cgroup/cpu")


def _quota() -> float | None:
    """CPUs a cgroup quota allows (None: no quota)."""
    try:
        if _CGROUP_V2.is_file():
            quota, period = _CGROUP_V2.read_text().split()[:2]
            return None if quota == "max" else int(quota) / int(period)
        quota = int((_CGROUP_V1 / "cpu.cfs_quota_us").read_text())
        period = int((_CGROUP_V1 / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota / period if quota > 0 and period > 0 else None


def available_cores() -> int:
    """Cores this process may run on: its affinity, capped by a cgroup CPU quota."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    quota = _quota()
    if quota is not None:
        cores = min(cores or 1, max(1, math.floor(quota)))
    return max(1, cores or 1)


def parallel_jobs() -> int:
    """Jobs running at once next to this one (``LRET_PARALLEL_JOBS``, default 1)."""
    try:
        return max(1, int(os.environ.get(PARALLEL_ENV, "1")))
    except ValueError:
        return 1


def busy_cores(sample_seconds: float = 0.05) -> int:
    """Cores other processes keep busy now (this process is idle while it samples)."""
    import psutil

    used = psutil.cpu_percent(interval=sample_seconds) / 100 * (psutil.cpu_count() or 1)
    return round(used)


def default_threads() -> int:
    """BLAS threads that do not oversubscribe: the free available cores, shared among the
    jobs that run at once."""
    share = available_cores() // parallel_jobs()
    if share <= 1:  # one thread whatever the load: no need to sample it (50 ms)
        return 1
    return max(1, (available_cores() - busy_cores()) // parallel_jobs())
