"""In-progress markers: a restore (or backup) killed outright is still recorded as failed.

An operation writes `<log_dir>/inprogress/<event>_<pid>_<n>.json` (its history event, the
process id and that process's start time) before it touches anything, updates the
`phase` as it goes, and removes the marker once it has written its own `ok`/`failed`
line. `settle_interrupted` — run at the start of every backup, restore and rollback, and
by `backup list` — turns each marker whose process is gone into a `failed` line in
`backup_history.log` (naming the phase it died in) and removes it. So a SIGKILL, an OOM
kill or a power cut never leaves an operation looking successful, and `latest` (newest
*good* backup) can never name what it left behind. A restore's marker also carries its
progress (`progress`: which foreign-key groups it swapped); one that stopped between two
groups is recorded as `partial` and kept as standing (`halfrestore`). Touches only `log_dir`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dumpload.backup import halfrestore
from dumpload.backup.files import write_json_atomic
from dumpload.logs import record_backup
from dumpload.private import make_dirs
from dumpload.procs import pid_alive, start_time

log = logging.getLogger(__name__)

FOLDER = "inprogress"


@dataclass
class Marker:
    """The marker file of one running operation."""

    path: Path
    doc: dict[str, Any] = field(default_factory=dict)

    def phase(self, phase: str, **details: Any) -> None:
        self.doc.update(phase=phase, **details)
        with contextlib.suppress(OSError):
            write_json_atomic(self.path, self.doc)

    def remove(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


@contextmanager
def in_progress(log_dir: Path, event: dict[str, Any]) -> Iterator[Marker]:
    """Hold a marker for the life of the block. The block records its own outcome; the
    marker is removed however the block ends (a Python exception is not a kill)."""
    folder = log_dir / FOLDER
    make_dirs(folder)
    pid = os.getpid()
    doc = {**event, "pid": pid, "pid_started": start_time(pid), "phase": "starting"}
    n = 0
    while (path := folder / f"{event.get('event', 'op')}_{pid}_{n}.json").exists():
        n += 1
    marker = Marker(path, doc)
    write_json_atomic(path, doc)
    try:
        yield marker
    finally:
        marker.remove()


def settle_interrupted(log_dir: Path) -> list[dict[str, Any]]:
    """Record every operation whose process died as `failed`; return their events."""
    folder = log_dir / FOLDER
    if not folder.is_dir():
        return []
    settled = []
    for path in sorted(folder.glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue  # being written right now, or not ours
        if pid_alive(int(doc.get("pid", 0)), doc.get("pid_started")):
            continue
        event = {k: v for k, v in doc.items()
                 if k not in ("pid", "pid_started", "phase", "progress")}
        phase = doc.get("phase", "starting")
        event.update(halfrestore.settle_restore(log_dir, doc))
        record_backup(log_dir, {**event, "status": "failed", "phase": phase,
                                "error": f"interrupted: the dumpload process (pid "
                                         f"{doc.get('pid')}) died during {phase}"})
        log.warning("%s %s was interrupted during %s; recorded as failed",
                    doc.get("event"), doc.get("id"), phase)
        with contextlib.suppress(OSError):
            path.unlink()
        settled.append({**event, "phase": phase})
    return settled


def settle_before_leftovers(log_dir: Path, target: str, tables: Collection[str]) -> None:
    """Run by `swap.settle_leftovers` once no swap executor runs on `target` and before it
    drops any work table: dead restores are settled and what their unfinished swap did is
    read from `tables` (`halfrestore.resolve`) while the work tables still tell."""
    settle_interrupted(log_dir)
    halfrestore.resolve(log_dir, target, tables)
