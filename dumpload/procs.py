"""Is a process still there? For records a killed dumpload leaves (journals, in-progress
markers, the target lock's holder). Reads /proc; touches nothing."""

from __future__ import annotations

import os
from pathlib import Path


def start_time(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (Linux), to tell a live process
    from a new one that reused the pid; None where /proc is not there."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rpartition(")")[2].split()[19]


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether `pid` runs (and, given `started`, is the same process that started then)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return started is None or start_time(pid) in (None, started)
