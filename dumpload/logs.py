"""The files under `log_dir`: one log per run, and three append-only histories.

```
logs/replicator_YYYYMMDD_HHMMSS.log   one per run: command line, tool version, servers, events
logs/backup_history.log               one line per backup attempt, good or failed
logs/error_summary.log                one line per failed run
logs/performance_metrics.log          JSON lines: timings and volumes per table/step
```
The library logs through `logging`; this module only decides where records go.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dumpload import __version__
from dumpload.private import make_dirs, open_private, touch

BACKUP_HISTORY = "backup_history.log"
ERROR_SUMMARY = "error_summary.log"
METRICS = "performance_metrics.log"
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass
class RunLog:
    """The current run: its id, its log file, and where the histories live."""

    run_id: str
    path: Path
    log_dir: Path
    command: str
    handler: logging.Handler

    def close(self) -> None:
        logging.getLogger("dumpload").removeHandler(self.handler)
        self.handler.close()


def now_stamp() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S")


def start_run(log_dir: Path, argv: Sequence[str], level: str,
              servers: Mapping[str, str] | None = None) -> RunLog:
    """Open `replicator_<stamp>.log` and route the `dumpload` logger into it.

    The run id is the stamp; a second run within the same second gets a suffix.
    """
    make_dirs(log_dir)
    stamp = now_stamp()
    run_id, n = stamp, 1
    while (log_dir / f"replicator_{run_id}.log").exists():
        n += 1
        run_id = f"{stamp}_{n}"
    path = log_dir / f"replicator_{run_id}.log"
    handler = logging.FileHandler(touch(path), encoding="utf-8")  # created 0600 first
    handler.setFormatter(logging.Formatter(_FORMAT))
    handler.setLevel(level)
    logger = logging.getLogger("dumpload")
    logger.addHandler(handler)
    logger.setLevel(min(logger.level or logging.DEBUG, logging.getLevelName(level)))
    command = " ".join(argv)
    logger.info("dumpload %s run %s (pid %d, python %s)", __version__, run_id, os.getpid(),
                sys.version.split()[0])
    logger.info("command: %s", command)
    for role, desc in (servers or {}).items():
        logger.info("%s: %s", role, desc)
    return RunLog(run_id, path, log_dir, command, handler)


def _append_line(path: Path, line: str) -> None:
    make_dirs(path.parent)
    with open_private(path, "a") as fh:
        fh.write(line.rstrip("\n") + "\n")


def _iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def record_error(log_dir: Path, run_id: str, command: str, cause: str, *,
                 step: str = "-", table: str = "-", exit_code: int | None = None) -> None:
    """One line in `error_summary.log` for a failed run."""
    cause = " ".join(cause.split())  # one line, whatever the tool printed
    _append_line(log_dir / ERROR_SUMMARY,
                 f"{_iso_now()} run={run_id} exit={exit_code} command={command!r} "
                 f"step={step} table={table} cause={cause}")


def record_backup(log_dir: Path, event: Mapping[str, Any]) -> None:
    """One JSON line in `backup_history.log` per backup attempt (status ok or failed)."""
    _append_line(log_dir / BACKUP_HISTORY, json.dumps({"time": _iso_now(), **event},
                                                      default=str))


def record_metrics(log_dir: Path, event: Mapping[str, Any]) -> None:
    """One JSON line in `performance_metrics.log`."""
    _append_line(log_dir / METRICS, json.dumps({"time": _iso_now(), **event}, default=str))


class Stopwatch:
    """Seconds per named phase, for metrics lines."""

    def __init__(self) -> None:
        self.phases: dict[str, float] = {}
        self._start = time.monotonic()

    def lap(self, phase: str) -> float:
        now = time.monotonic()
        elapsed = now - self._start
        self.phases[phase] = round(self.phases.get(phase, 0.0) + elapsed, 3)
        self._start = now
        return elapsed
