"""The run journal of `sync`: which steps and tables a run finished, and what it changed.

One JSON file per run under `<log_dir>/runs/<run_id>.json`, rewritten atomically after
every step. It serves three purposes:
- resume: a rerun after Ctrl-C, SIGKILL or a lost server continues the unfinished run of
  the same source → target (same run id, same pre-change backup) instead of starting over;
- rollback: it names the pre-change backups and the tables the run changed or created;
- a lock: a journal whose process is still alive means another sync is running.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from dumpload.errors import BackupError, UsageError
from dumpload.private import make_dirs, open_private
from dumpload.procs import pid_alive
from dumpload.shapes import MapOf, shape_error

RUNNING, FAILED, DONE, NOTHING = "running", "failed", "done", "nothing-to-do"
ABANDONED = "abandoned"
ROLLED_BACK = "rolled-back"   # undone by `dumpload rollback`: never resumed nor undone again
UNFINISHED = (RUNNING, FAILED)
# A rerun resumes an unfinished run only this soon after it; an older one is abandoned and
# a fresh run takes a fresh backup (the target may have moved on in between).
RESUME_WINDOW = timedelta(hours=24)


@dataclass
class Journal:
    run_id: str
    source: str
    target: str
    database: str
    path: Path
    status: str = RUNNING
    pid: int = field(default_factory=os.getpid)
    started: str = field(default_factory=lambda: _now())
    updated: str = ""
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    backups: list[str] = field(default_factory=list)
    backed_up_tables: list[str] = field(default_factory=list)
    tables_created: list[str] = field(default_factory=list)
    tables_altered: list[str] = field(default_factory=list)
    tables_copied: list[str] = field(default_factory=list)
    resumed_times: int = 0
    failure: dict[str, Any] | None = None
    command: str = "sync"
    views_created: list[str] = field(default_factory=list)   # dropped by a rollback
    views_changed: list[str] = field(default_factory=list)   # replaced or dropped: backed up
    # Which backup holds each backed-up table/view (a resumed run's fresh backup of a table
    # that changed since the run stopped replaces the first one).
    table_backup: dict[str, str] = field(default_factory=dict)
    # Fingerprints (rows + definition) of what the run changed, when it stopped (done or
    # failed): rollback compares them with the target's to see writes made since.
    final_state: dict[str, str] = field(default_factory=dict)
    ended: str = ""
    rolled_back_by: str | None = None
    # A rollback in progress (set before its swap): its run id and the rows checksum each
    # table will hold after the swap.
    rolling_back_by: str | None = None
    rollback_expect: dict[str, str] = field(default_factory=dict)

    @property
    def changed_objects(self) -> list[str]:
        """Tables and views whose target state this run changed."""
        return list(dict.fromkeys([*self.changed_tables, *self.views_created,
                                   *self.views_changed]))

    @property
    def changed_tables(self) -> list[str]:
        """Tables whose target state this run changed (created ones included), in order."""
        seen: dict[str, None] = {}
        for name in (*self.tables_created, *self.tables_altered, *self.tables_copied):
            seen.setdefault(name, None)
        return list(seen)

    def mark_step(self, step: str, status: str, **details: Any) -> None:
        self.steps[step] = {"status": status, **details}
        self.save()

    def add_unique(self, attr: str, names: list[str]) -> None:
        current: list[str] = getattr(self, attr)
        current.extend(n for n in names if n not in current)
        self.save()

    def finish(self, status: str, failure: dict[str, Any] | None = None) -> None:
        self.status, self.failure = status, failure
        self.save()

    def save(self) -> None:
        """Write atomically: a crash mid-write must never leave a broken journal."""
        self.updated = _now()
        doc = asdict(self)
        doc["path"] = str(self.path)
        make_dirs(self.path.parent)
        tmp = self.path.with_suffix(".json.tmp")
        with open_private(tmp, "w") as fh:
            json.dump(doc, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def runs_dir(log_dir: Path) -> Path:
    return log_dir / "runs"


# The keys a journal must have, with their JSON types (the rest default).
_SHAPE = {"run_id": str, "source": str, "target": str, "database": str, "status?": str,
          "pid?": int, "started?": str, "updated?": str, "steps?": MapOf(dict),
          "backups?": [str], "backed_up_tables?": [str], "tables_created?": [str],
          "tables_altered?": [str], "tables_copied?": [str], "resumed_times?": int,
          "failure?": (dict, None)}


def load(path: Path) -> Journal:
    """The journal at `path`; `ValueError` saying what is wrong if it is not one of ours."""
    try:
        doc = json.loads(path.read_bytes().decode("utf-8"))
    except RecursionError:
        raise ValueError("not JSON (nested too deep)") from None
    if (error := shape_error(doc, _SHAPE)) is not None:
        raise ValueError(error)
    for key in ("started", "updated"):
        if doc.get(key):
            datetime.fromisoformat(doc[key])  # ValueError when it is not a time
    doc["path"] = path
    return Journal(**doc)


def _check_named(log_dir: Path, run_id: str) -> None:
    # A run named on the command line whose journal is damaged: say so, not "no such run".
    path = runs_dir(log_dir) / f"{run_id}.json"
    if "/" in run_id or not path.is_file():
        return
    try:
        load(path)
    except (OSError, ValueError, TypeError) as exc:
        raise BackupError(f"the journal of run {run_id} ({path}) is damaged: {exc}",
                          hint="roll back by hand with `dumpload backup restore ID`; the "
                          "run's backups are listed by `dumpload backup list`") from None


def all_journals(log_dir: Path) -> list[Journal]:
    """Every journal, oldest first (run ids are timestamps, so names sort by time)."""
    folder = runs_dir(log_dir)
    if not folder.is_dir():
        return []
    out = []
    for path in sorted(folder.glob("*.json")):
        try:
            out.append(load(path))
        except (OSError, ValueError, TypeError):
            continue  # a foreign or damaged file is not a run of ours
    return out


def _alive(pid: int) -> bool:
    return pid != os.getpid() and pid_alive(pid)


def begin(log_dir: Path, run_id: str, source: str, target: str, database: str) -> Journal:
    """Resume the unfinished run of source → target if there is one, else start `run_id`.

    Refuses when another sync into the same target is still running.
    """
    for journal in reversed(all_journals(log_dir)):
        if journal.target != target or journal.database != database:
            continue
        if journal.status == RUNNING and _alive(journal.pid):
            raise UsageError(f"another sync into {target!r} is running (run {journal.run_id}, "
                             f"pid {journal.pid})", hint="wait for it to finish")
        if journal.status in UNFINISHED and journal.source == source and _recent(journal) \
                and not journal.rolling_back_by:  # half rolled back: never resumed
            journal.status, journal.pid = RUNNING, os.getpid()
            journal.resumed_times += 1
            journal.failure = None
            journal.save()
            return journal
        if journal.status in UNFINISHED:
            journal.finish(ABANDONED, journal.failure)
        break  # the latest run into this target finished or was abandoned: start afresh
    journal = Journal(run_id, source, target, database, runs_dir(log_dir) / f"{run_id}.json")
    journal.save()
    return journal


def _recent(journal: Journal) -> bool:
    updated = datetime.fromisoformat(journal.updated or journal.started)
    return datetime.now(UTC) - updated < RESUME_WINDOW


def settle(log_dir: Path, target: str, database: str) -> Journal | None:
    """Close the unfinished run into `target` once a rerun found nothing left to do, so a
    later sync starts afresh (with a fresh backup) instead of resuming it."""
    for journal in reversed(all_journals(log_dir)):
        if journal.target != target or journal.database != database:
            continue
        if journal.status in UNFINISHED and not (journal.status == RUNNING
                                                 and _alive(journal.pid)):
            journal.finish(DONE, journal.failure)
            return journal
        return None
    return None


def find(log_dir: Path, run_id: str | None, target: str | None = None) -> Journal:
    """The journal of `run_id`, or the newest run that changed something (for rollback)."""
    if run_id:
        _check_named(log_dir, run_id)
    journals = all_journals(log_dir)
    if run_id:
        for journal in journals:
            if journal.run_id == run_id:
                return journal
        raise UsageError(f"no sync run {run_id!r} in {runs_dir(log_dir)}",
                         hint="list runs with: ls " + str(runs_dir(log_dir)))
    for journal in reversed(journals):
        if journal.status == ROLLED_BACK:
            continue
        if journal.changed_objects and (target is None or journal.target == target):
            return journal
    raise UsageError(f"no sync run with changes to roll back in {runs_dir(log_dir)}")


def later_runs(log_dir: Path, journal: Journal) -> list[Journal]:
    """Runs into the same target started after `journal` (for a rollback's report)."""
    return [j for j in all_journals(log_dir) if j.target == journal.target
            and j.database == journal.database and j.started > journal.started
            and j.run_id != journal.run_id]
