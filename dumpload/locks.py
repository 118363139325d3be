"""The target lock: one writing dumpload per target database at a time.

Every writing command (`structure`, `data`, `sync`, `import`, `backup restore`,
`rollback`) holds a named server lock (`GET_LOCK('dumpload:<database>')`) on the target
for its whole life, then settles what an interrupted run left (`swap.settle_leftovers`)
before its first change. A second writer is refused at once (exit 2) with the holder's
command, run id, start time, pid and host, and changes nothing.

The holder's connection keeps running `SELECT SLEEP(..) /* dumpload-lock {...} */`, which
makes those facts readable in the process list from any host, and makes the server
notice within a fraction of a second that a killed dumpload is gone (the lock goes with
its connection).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pymysql

from dumpload import privileges, swap
from dumpload.config import DatabaseConfig, Settings
from dumpload.db import Session, connect
from dumpload.errors import (
    BackupError,
    DataError,
    DumpLoadError,
    StructureError,
    UsageError,
)
from dumpload.mdl import LOCK_MARK
from dumpload.procs import pid_alive

log = logging.getLogger(__name__)

KEEPALIVE = 0.2          # seconds per keep-alive SLEEP: how late a release is noticed
MAX_LOCK_NAME = 64       # MySQL's limit on user-level lock names


def lock_name(database: str) -> str:
    name = f"dumpload:{database}"
    if len(name) <= MAX_LOCK_NAME:
        return name
    return "dumpload:" + hashlib.sha1(database.encode()).hexdigest()


def holder_info(command: str, run_id: str) -> dict[str, Any]:
    return {"command": command, "run_id": run_id, "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}


class _Keeper(threading.Thread):
    """Keeps the lock's connection busy with a labelled SLEEP until told to stop."""

    def __init__(self, session: Session, info: dict[str, Any]) -> None:
        super().__init__(name="dumpload-target-lock", daemon=True)
        self.session = session
        label = json.dumps(info).replace("*/", "* /")
        self.sql = f"SELECT SLEEP({KEEPALIVE}) /* {LOCK_MARK} {label} */"
        self.stop = threading.Event()
        self.lost: BaseException | None = None

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                self.session.query(self.sql)
            except pymysql.err.MySQLError as exc:
                self.lost = exc
                log.warning("the target lock's connection was lost (%s): another dumpload "
                            "could start writing", exc)
                return


@contextmanager
def target_lock(db: DatabaseConfig, settings: Settings, *, command: str,
                run_id: str) -> Iterator[Session]:
    """Hold `dumpload:<database>` on the target for the block; yields the lock's session
    (not for use while held: it is busy keeping the lock). Refuses (UsageError, exit 2)
    when another dumpload holds it."""
    name = lock_name(db.database)
    session = connect(db, settings)
    keeper: _Keeper | None = None
    try:
        if session.scalar("SELECT GET_LOCK(%s, 0)", (name,)) != 1:
            _refuse(session, name, db)
        keeper = _Keeper(session, holder_info(command, run_id))
        keeper.start()
        yield session
    finally:
        if keeper is not None:
            keeper.stop.set()
            keeper.join()
            with contextlib.suppress(pymysql.err.MySQLError):
                session.query("SELECT RELEASE_LOCK(%s)", (name,))
        session.close()


def _refuse(session: Session, name: str, db: DatabaseConfig) -> None:
    holder = _holder(session, name)
    pid = holder.get("pid")
    gone = (holder.get("host") == socket.gethostname() and isinstance(pid, int)
            and not pid_alive(pid))
    # A holder that just died: its connection goes within one keep-alive.
    if gone and session.scalar("SELECT GET_LOCK(%s, %s)", (name, 2)) == 1:
        return
    who = (f"{holder.get('command', '?')} run {holder.get('run_id', '?')} since "
           f"{holder.get('since', '?')} (pid {holder.get('pid', '?')}, host "
           f"{holder.get('host', '?')})" if "command" in holder
           else f"connection {holder.get('id', '?')} (not a dumpload this account can see)")
    raise UsageError(f"target {db.name} ({db.database}) is locked by {who}; nothing changed",
                     hint="wait for that run to finish; if it is gone, its lock goes with "
                     "its connection within a second")


def _holder(session: Session, name: str) -> dict[str, Any]:
    conn_id = session.scalar("SELECT IS_USED_LOCK(%s)", (name,))
    for _ in range(10):  # between two keep-alive statements INFO is empty
        info = session.scalar(
            "SELECT INFO FROM information_schema.PROCESSLIST WHERE ID = %s", (conn_id,))
        if info and LOCK_MARK in str(info):
            text = str(info).split(LOCK_MARK, 1)[1].rsplit("*/", 1)[0]
            with contextlib.suppress(ValueError):
                data = json.loads(text)
                if isinstance(data, dict):
                    return data
        time.sleep(0.05)
    return {"id": conn_id}


@contextmanager
def writing(db: DatabaseConfig, settings: Settings, *, command: str,
            run_id: str) -> Iterator[list[str]]:
    """What every writing command does first: take the target lock, then settle what an
    interrupted run left. Yields the work tables settling dropped."""
    with target_lock(db, settings, command=command, run_id=run_id):
        with contextlib.closing(connect(db, settings)) as session:
            refuse_missing_privileges(session, command)
            settled = swap.settle_leftovers(db, settings, session)
        yield settled


_ERRORS: dict[str, type[DumpLoadError]] = {
    "structure": StructureError, "backup restore": BackupError, "rollback": BackupError}


def refuse_missing_privileges(session: Session, command: str) -> None:
    """Before the first change: the account holds every privilege `command` will use."""
    lacking = privileges.missing_for(session, command)
    if not lacking:
        return
    account = str(session.scalar("SELECT CURRENT_USER()"))
    error = _ERRORS.get(command, DataError)
    raise error(f"{account} lacks {', '.join(map(str, lacking))} on {session.env.name} "
                f"({session.env.database}), which {command} uses; nothing was changed",
                hint=privileges.grant_statements(lacking, session.env.database, account))
