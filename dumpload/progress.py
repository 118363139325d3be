"""Progress of long copies: rich bars on a terminal, periodic log lines elsewhere.

The library reports through the small `Progress` interface (thread-safe); the CLI picks
`TerminalProgress` when stderr is a terminal and `LogProgress` otherwise. `NullProgress`
is the default for library callers that show nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.progress import (
    Progress as RichProgress,
)

from dumpload.catalog import human_bytes

log = logging.getLogger(__name__)


class Progress:
    """Interface: tables announced with an estimate, advanced by rows/bytes, finished."""

    def add_table(self, table: str, rows: int, size: int) -> None: ...
    def advance(self, table: str, rows: int, size: int) -> None: ...
    def table_done(self, table: str, status: str = "done") -> None: ...
    def close(self) -> None: ...

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class NullProgress(Progress):
    """Shows nothing."""


@dataclass
class _Counts:
    rows_total: int
    size_total: int
    rows: int = 0
    size: int = 0
    status: str = "copying"


class LogProgress(Progress):
    """One log line per table every `interval` seconds, and a line when a table ends."""

    def __init__(self, interval: float = 10.0, logger: logging.Logger | None = None) -> None:
        self.interval = interval
        self.log = logger or log
        self.tables: dict[str, _Counts] = {}
        self._lock = threading.Lock()
        self._last = time.monotonic()
        self._start = time.monotonic()

    def add_table(self, table: str, rows: int, size: int) -> None:
        with self._lock:
            self.tables[table] = _Counts(rows, size)

    def advance(self, table: str, rows: int, size: int) -> None:
        with self._lock:
            counts = self.tables.setdefault(table, _Counts(0, 0))
            counts.rows += rows
            counts.size += size
            now = time.monotonic()
            if now - self._last < self.interval:
                return
            self._last = now
            lines = [self._line(t, c, now) for t, c in self.tables.items()
                     if c.status == "copying" and c.size]
        for line in lines:
            self.log.info("progress %s", line)

    def _line(self, table: str, c: _Counts, now: float) -> str:
        rate = c.size / max(now - self._start, 1e-6)
        eta = max(c.size_total - c.size, 0) / rate if rate and c.size_total else 0
        return (f"{table}: {c.rows:,}/{c.rows_total:,} rows, {human_bytes(c.size)}, "
                f"{human_bytes(rate)}/s, eta {eta:.0f} s")

    def table_done(self, table: str, status: str = "done") -> None:
        with self._lock:
            counts = self.tables.setdefault(table, _Counts(0, 0))
            counts.status = status
        self.log.info("%s %s: %s rows, %s", table, status, f"{counts.rows:,}",
                      human_bytes(counts.size))


class TerminalProgress(Progress):
    """rich bars: one per table and one overall (rows, bytes, rate, ETA)."""

    def __init__(self, console: Console | None = None) -> None:
        self.bar = RichProgress(
            TextColumn("{task.description}", justify="left"), BarColumn(),
            TextColumn("{task.fields[rows]:>12,} rows"), DownloadColumn(),
            TransferSpeedColumn(), TimeRemainingColumn(),
            console=console or Console(stderr=True), transient=False)
        self._lock = threading.Lock()
        self.overall = self.bar.add_task("[bold]all tables", total=0, rows=0)
        self.tasks: dict[str, TaskID] = {}
        self.bar.start()

    def add_table(self, table: str, rows: int, size: int) -> None:
        with self._lock:
            self.tasks[table] = self.bar.add_task(table, total=max(size, 1), rows=0)
            total = self.bar.tasks[self.overall].total or 0
            self.bar.update(self.overall, total=total + max(size, 1))

    def advance(self, table: str, rows: int, size: int) -> None:
        with self._lock:
            task = self.tasks.get(table)
            if task is None:
                return
            done = self.bar.tasks[task].fields["rows"] + rows
            self.bar.update(task, advance=size, rows=done)
            overall_rows = self.bar.tasks[self.overall].fields["rows"] + rows
            self.bar.update(self.overall, advance=size, rows=overall_rows)

    def table_done(self, table: str, status: str = "done") -> None:
        with self._lock:
            task = self.tasks.get(table)
            if task is None:
                return
            t = self.bar.tasks[task]
            # The size was an estimate: a finished table shows full, the overall total
            # becomes the sum of what finished tables really moved plus the estimates.
            self.bar.update(task, total=t.completed or 1, completed=t.completed or 1,
                            description=f"{table} [dim]{status}[/]")
            total = sum(self.bar.tasks[i].total or 0 for i in self.tasks.values())
            self.bar.update(self.overall, total=max(total, 1))

    def close(self) -> None:
        self.bar.stop()


def make_progress(console: Console | None = None, *, interactive: bool | None = None) -> Progress:
    """Bars on a terminal, log lines otherwise."""
    console = console or Console(stderr=True)
    tty = console.is_terminal if interactive is None else interactive
    return TerminalProgress(console) if tty else LogProgress()
