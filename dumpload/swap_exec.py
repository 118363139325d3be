"""The detached executor of one swap or settle script (see `dumpload.swap`).

Started by `swap.run_script` in its own session, it reads one pickled job from stdin and
answers with JSON lines on stdout: `{"event": "log", ...}` while it works, then one verdict
(`done`, `blocked`, `changed`, `error`). Until it holds the lock it gives up when stdin
closes (dumpload died or was interrupted): nothing has been changed then. Once it holds
the lock it runs the script to the end whatever happens to dumpload, because a half-run
script is exactly what application sessions must never see.

Touches only the tables named in the script, on the target database of the job.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import pickle
import struct
import sys
import threading
from pathlib import Path
from typing import Any

import pymysql

from dumpload.db import Session, connect, fresh_table_stats
from dumpload.errors import DumpLoadError
from dumpload.mdl import Holder, LockBusy, handoff, lock_tables, wait_until_waiting
from dumpload.swap import (
    Fingerprint,
    Script,
    changed_since,
    executor_lock,
    plan_settle,
    read_catalog,
)

GATE_WAIT = 30                    # seconds a gate may queue behind our own lock
STDIN = 0


class Verdict(Exception):
    """Ends the job with one verdict event."""

    def __init__(self, event: str, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.event = {"event": event, "message": message, "hint": hint}


def emit(event: dict[str, Any]) -> None:
    try:
        sys.stdout.write(json.dumps(event, default=str) + "\n")
        sys.stdout.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass  # dumpload is gone: keep working, nobody is listening


def say(message: str, level: int = logging.INFO) -> None:
    emit({"event": "log", "level": level, "message": message})


def _watch_parent(cancelled: threading.Event) -> None:
    # The raw descriptor, not sys.stdin.buffer: a daemon thread blocked inside a buffered
    # reader holds its lock, and the interpreter's shutdown then waits a second for it and
    # aborts (SIGABRT) — a second lost on every swap.
    try:
        while os.read(STDIN, 1 << 16):
            pass
    except OSError:
        pass
    cancelled.set()


def read_job() -> dict[str, Any]:
    """The pickled job: a 4-byte big-endian length, then the pickle (from `run_script`)."""
    def exactly(n: int) -> bytes:
        parts: list[bytes] = []
        while n:
            part = os.read(STDIN, n)
            if not part:
                raise SystemExit("swap executor: stdin ended before the whole job")
            parts.append(part)
            n -= len(part)
        return b"".join(parts)

    job: dict[str, Any] = pickle.loads(exactly(struct.unpack(">I", exactly(4))[0]))
    return job


# ---------------------------------------------------------------- the steps
def check_guard(session: Session, guard: list[Fingerprint]) -> None:
    fresh_table_stats(session)
    for fp in guard:
        now = session.scalar(
            "SELECT UPDATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
            "AND TABLE_NAME = %s", (fp.table,))
        if changed_since(fp, now):
            raise Verdict(
                "changed", f"table {fp.table!r} was written to on the target after its copy "
                f"started (last write {now}); not swapped: the old rows and the "
                "application's writes are intact",
                "the target is being written: rerun with --lock-target to block writes to "
                "each table while it is copied, or rerun in a quiet window")


def cut_over(job: dict[str, Any], lock_session: Session, script: Script) -> None:
    """Step 4. One gate connection per live table queues for it behind our lock; we unlock,
    and each gate, first in line, gets its table before any application statement. Then
    the RENAME queues behind the gates, and `handoff` opens them in the order the RENAME
    takes its locks, so it runs before any waiting application statement too."""
    db, settings = job["db"], job["settings"]
    gates = [Holder(connect(db, settings), t) for t in script.watch]
    renamer = connect(db, settings)
    try:
        for gate in gates:
            gate.queue(GATE_WAIT)
        for gate in gates:
            wait_until_waiting(lock_session, gate.connection_id)
        lock_session.execute("UNLOCK TABLES")
        for gate in gates:
            if not gate.wait(GATE_WAIT):
                say(f"could not hold {gate.table} for the rename ({gate.error}); its fence "
                    "refuses stray writes", logging.WARNING)
        _rename(renamer, script.rename or "", settings, lock_session, gates)
    finally:
        for gate in gates:
            gate.release()
            gate.close()
        renamer.close()


def _rename(renamer: Session, rename: str, settings: Any, watcher: Session,
            gates: list[Holder]) -> None:
    failure: list[BaseException] = []

    def go() -> None:
        try:
            renamer.execute(f"SET SESSION lock_wait_timeout = {int(settings.lock_wait_timeout)}")
            renamer.execute(rename)
        except BaseException as exc:
            failure.append(exc)

    conn_id = int(renamer.scalar("SELECT CONNECTION_ID()"))
    worker = threading.Thread(target=go, daemon=True)
    worker.start()
    if gates:
        wait_until_waiting(watcher, conn_id)
        handoff(watcher, gates, conn_id)
    worker.join()
    if failure:
        raise failure[0]


def undo(session: Session, script: Script) -> None:
    """A statement of step 3 failed while we hold the lock: put everything back."""
    back = plan_settle(read_catalog(session), script.record, set(script.watch))
    for stmt in back.move:
        session.execute(stmt)


def acquire(job: dict[str, Any], session: Session, script: Script,
            cancelled: threading.Event) -> None:
    emit({"event": "locking", "connection": session.scalar("SELECT CONNECTION_ID()")})
    lock_tables(session, script.lock, script.database, script.watch, job["settings"],
                cancelled=cancelled, ignore=job.get("ignore", ()),
                on_wait=lambda m: say(m, logging.WARNING))


def relock_and_undo(job: dict[str, Any], session: Session, script: Script,
                    cancelled: threading.Event) -> None:
    """The RENAME failed after we unlocked: lock again and move everything back."""
    back = plan_settle(read_catalog(session), script.record, set(script.watch))
    acquire(job, session, back, threading.Event())
    for stmt in back.move:
        session.execute(stmt)
    session.execute("UNLOCK TABLES")
    forget_record(job["record"])


def write_record(path: str | None, script: Script) -> None:
    if not path:
        return
    folder = Path(path).parent
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(script.record, fh)
        fh.flush()
        os.fsync(fh.fileno())


def forget_record(path: str | None) -> None:
    if path:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def execute(job: dict[str, Any], cancelled: threading.Event) -> None:
    script: Script = job["script"]
    session = connect(job["db"], job["settings"])
    try:
        # Held for our whole life; released with our connection however we end.
        session.scalar("SELECT GET_LOCK(%s, 60)", (executor_lock(script.database),))
        session.execute("SET SESSION foreign_key_checks = 0")
        acquire(job, session, script, cancelled)
        try:
            check_guard(session, script.guard)
        except Verdict:
            session.execute("UNLOCK TABLES")
            raise
        write_record(job["record"], script)
        try:
            for stmt in script.move + script.fence:
                session.execute(stmt)
        except pymysql.err.MySQLError as exc:
            undo(session, script)
            session.execute("UNLOCK TABLES")
            forget_record(job["record"])
            raise Verdict("error", f"{exc.args[-1]} (error {exc.args[0]}); undone, the live "
                          "tables are unchanged") from None
        if script.rename:
            try:
                cut_over(job, session, script)
            except pymysql.err.MySQLError as exc:
                relock_and_undo(job, session, script, cancelled)
                raise Verdict("error", f"the rename failed: {exc.args[-1]} (error "
                              f"{exc.args[0]}); undone, the live tables are unchanged") from None
        else:
            session.execute("UNLOCK TABLES")
        forget_record(job["record"])
        for stmt in script.drop:
            session.execute(stmt)
    finally:
        session.close()


def main() -> int:
    job = read_job()
    cancelled = threading.Event()
    threading.Thread(target=_watch_parent, args=(cancelled,), daemon=True).start()
    try:
        execute(job, cancelled)
    except Verdict as verdict:
        emit(verdict.event)
        return 1
    except LockBusy as exc:
        emit({"event": "blocked", "message": exc.message, "hint": exc.hint})
        return 1
    except DumpLoadError as exc:
        emit({"event": "error", "message": exc.message, "hint": exc.hint})
        return 1
    except pymysql.err.MySQLError as exc:
        emit({"event": "error", "message": f"{exc.args[-1]} (error {exc.args[0]})"})
        return 1
    emit({"event": "done"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
