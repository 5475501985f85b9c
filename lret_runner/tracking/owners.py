"""Who owns a RUNNING run: the process that records it, by host, pid and start time.

Nothing can catch SIGKILL, so a killed process leaves its run RUNNING. Every run carries
its owner's identity; :func:`gone` tells, on the owner's host, whether that process still
exists, and ``lret-runner runs cleanup`` (and a resumed sweep) ends orphaned runs KILLED.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from lret_runner.tracking import vocabulary as V


def _started(pid: int) -> str | None:
    import psutil

    try:
        return f"{psutil.Process(pid).create_time():.2f}"
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return None


_owner: dict[int, dict[str, str]] = {}  # by pid: a forked child computes its own


def owner_tags() -> dict[str, str]:
    """The tags that name this process as a run's owner (computed once per process)."""
    pid = os.getpid()
    if pid not in _owner:
        _owner[pid] = {
            V.OWNER_HOST: socket.gethostname(),
            V.OWNER_PID: str(pid),
            V.OWNER_STARTED: _started(pid) or "",
        }
    return dict(_owner[pid])


def gone(tags: Mapping[str, str]) -> str | None:
    """Why a run's owner is known to be gone (None: alive, or not checkable from here)."""
    host, pid, started = (tags.get(k) for k in (V.OWNER_HOST, V.OWNER_PID, V.OWNER_STARTED))
    if host != socket.gethostname() or not pid or not pid.isdigit():
        return None  # another machine's process (or an old run without an owner)
    now = _started(int(pid))
    if now is not None and now == started:
        return None
    return f"its process (pid {pid} on {host}) is gone: killed or crashed without ending the run"
