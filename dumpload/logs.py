"""The files under `log_dir`: one log per writing run, one shared line per read-only call,
and three append-only histories.

```
logs/replicator_YYYYMMDD_HHMMSS.log   one per writing run: command line, version, servers, events
logs/commands.log                     one line per read-only call (analyze, verify, tables,
                                      config show, backup list, backup verify, doctor)
logs/backup_history.log               one line per backup attempt, good or failed
logs/error_summary.log                one line per failed writing run
logs/performance_metrics.log          JSON lines: timings and volumes per table/step
```
Run logs are rotated when a writing run starts: those older than `backup_retention_days`
go, and only the newest `RUN_LOGS_KEPT` stay; `commands.log` is moved to `commands.log.1`
once it passes `COMMANDS_LOG_MAX` bytes. The library logs through `logging`; this module
only decides where records go.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dumpload import __version__
from dumpload.errors import ConfigError
from dumpload.private import make_dirs, open_private, touch

BACKUP_HISTORY = "backup_history.log"
ERROR_SUMMARY = "error_summary.log"
METRICS = "performance_metrics.log"
COMMANDS_LOG = "commands.log"
RUN_LOG_GLOB = "replicator_*.log"
RUN_LOGS_KEPT = 200            # newest run logs kept, whatever their age
COMMANDS_LOG_MAX = 5 << 20     # bytes before commands.log is rotated to commands.log.1
_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


@dataclass
class RunLog:
    """The current call: its id, its log file, and where the histories live.

    A writing run has its own file (`handler` routes the `dumpload` logger into it); a
    read-only call (`handler` None) writes one line to `commands.log` when it closes.
    """

    run_id: str
    path: Path
    log_dir: Path
    command: str
    handler: logging.Handler | None
    started: float = field(default_factory=time.monotonic)
    error: str | None = None
    exit_code: int = 0

    @property
    def read_only(self) -> bool:
        return self.handler is None

    def failed(self, message: str, code: int, cause: BaseException | None, *,
               step: str = "-", table: str = "-") -> None:
        """Record the error that ends this call (once: the CLI already printed it)."""
        self.error, self.exit_code = " ".join(message.split()), code
        if self.read_only:
            return
        logging.getLogger("dumpload").error("%s (exit %d)", message, code, exc_info=cause)
        record_error(self.log_dir, self.run_id, self.command, message, step=step,
                     table=table, exit_code=code)

    def close(self) -> None:
        if self.handler is None:
            line = (f"{_iso_now()} exit={self.exit_code} "
                    f"seconds={time.monotonic() - self.started:.1f} command={self.command!r}"
                    + (f" error={self.error}" if self.error else ""))
            with contextlib.suppress(OSError):  # a read-only call never fails for its log
                _rotate_by_size(self.path, COMMANDS_LOG_MAX)
                _append_line(self.path, line)
            return
        logging.getLogger("dumpload").removeHandler(self.handler)
        self.handler.close()


def now_stamp() -> str:
    return datetime.now().strftime("%Y%m%d_%H%M%S")


def start_run(log_dir: Path, argv: Sequence[str], level: str,
              servers: Mapping[str, str] | None = None, *, read_only: bool = False,
              retention_days: int | None = None) -> RunLog:
    """Open this call's log: `replicator_<stamp>.log` for a writing run (routing the
    `dumpload` logger into it, after rotating old run logs), `commands.log` otherwise.

    The run id is the stamp; a second run within the same second gets a suffix.
    """
    command = " ".join(argv)
    if read_only:  # never refused for its one log line: that line is skipped instead
        with contextlib.suppress(ConfigError):
            _make_log_dir(log_dir)
        return RunLog(now_stamp(), log_dir / COMMANDS_LOG, log_dir, command, None)
    _make_log_dir(log_dir)
    rotate_run_logs(log_dir, retention_days)
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
    logger.info("dumpload %s run %s (pid %d, python %s)", __version__, run_id, os.getpid(),
                sys.version.split()[0])
    logger.info("command: %s", command)
    for role, desc in (servers or {}).items():
        logger.info("%s: %s", role, desc)
    return RunLog(run_id, path, log_dir, command, handler)


def _make_log_dir(log_dir: Path) -> None:
    try:
        make_dirs(log_dir)
        if not os.access(log_dir, os.W_OK | os.X_OK):
            raise PermissionError(13, "Permission denied", str(log_dir))
    except OSError as exc:
        what = "is not a folder" if isinstance(exc, FileExistsError | NotADirectoryError) \
            else f"cannot be used: {exc.strerror}"
        raise ConfigError(f"settings.log_dir {log_dir} {what}",
                          hint="point settings.log_dir at a folder dumpload may write") from None


def rotate_run_logs(log_dir: Path, retention_days: int | None,
                    keep: int = RUN_LOGS_KEPT) -> list[Path]:
    """Delete run logs older than `retention_days` and all but the newest `keep`.

    Returns the deleted paths. Never raises: a log that cannot be removed stays.
    """
    logs = sorted(log_dir.glob(RUN_LOG_GLOB), key=lambda p: p.name, reverse=True)
    cutoff = (datetime.now() - timedelta(days=retention_days)).timestamp() \
        if retention_days is not None else None
    deleted = []
    for i, path in enumerate(logs):
        with contextlib.suppress(OSError):
            if i >= keep or (cutoff is not None and path.stat().st_mtime < cutoff):
                path.unlink()
                deleted.append(path)
    return deleted


def _rotate_by_size(path: Path, limit: int) -> None:
    if path.exists() and path.stat().st_size >= limit:
        os.replace(path, path.with_name(path.name + ".1"))


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
