"""Bounded metadata-lock waits on a live target: who blocks, and `LOCK TABLES` that never
makes application queries queue for longer than `lock_wait_timeout`.

A DDL or `LOCK TABLES` waiting for a metadata lock makes every later statement on that
table wait behind it. So each attempt waits at most `settings.lock_wait_timeout` seconds,
attempts are retried with backoff until `settings.lock_wait_total`, and a holder known
for certain (MariaDB's METADATA_LOCK_INFO plugin) is waited out without queueing at all.
Reads the catalog; the only lock it takes is the one asked for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import pymysql

from dumpload.config import Settings
from dumpload.db import Session
from dumpload.errors import DataError

log = logging.getLogger(__name__)

LOCK_WAIT_ERRORS = {1205, 1213}   # lock wait timeout, deadlock: worth another attempt
INFO_CHARS = 80                   # of a blocking connection's statement, in messages
LOCK_MARK = "dumpload-lock"       # in the target lock's keep-alive statement (locks.py)


class LockBusy(DataError):
    """The metadata lock could not be had within `lock_wait_total` (exit 6)."""


def blockers(session: Session, database: str, tables: Sequence[str],
             ignore: Collection[int] = ()) -> list[dict[str, Any]]:
    """Connections that hold (or may hold) a metadata lock on `tables`.

    Exact where the server shows metadata locks (MariaDB's METADATA_LOCK_INFO plugin);
    otherwise every open transaction and long statement on the database is a suspect."""
    if not tables:
        return []
    marks = ", ".join(["%s"] * len(tables))
    try:
        rows = session.query_dicts(
            "SELECT DISTINCT m.THREAD_ID AS id, p.USER AS user, p.HOST AS host, p.TIME AS time, "
            "p.COMMAND AS command, p.INFO AS info FROM information_schema.METADATA_LOCK_INFO m "
            "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = m.THREAD_ID "
            f"WHERE m.TABLE_SCHEMA = %s AND m.TABLE_NAME IN ({marks}) "
            "AND m.THREAD_ID <> CONNECTION_ID()", [database, *tables])
        return [dict(r, exact=True) for r in rows if r["id"] not in ignore]
    except pymysql.err.MySQLError:
        pass  # no plugin: fall back to suspects
    rows = _rows_or_none(session, (
        "SELECT t.trx_mysql_thread_id AS id, p.USER AS user, p.HOST AS host, "
        "TIMESTAMPDIFF(SECOND, t.trx_started, NOW()) AS time, p.COMMAND AS command, "
        "p.INFO AS info FROM information_schema.INNODB_TRX t "
        "LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id "
        "WHERE t.trx_mysql_thread_id <> CONNECTION_ID() ORDER BY t.trx_started LIMIT 5"), ())
    rows += _rows_or_none(session, (
        "SELECT ID AS id, USER AS user, HOST AS host, TIME AS time, COMMAND AS command, "
        "INFO AS info FROM information_schema.PROCESSLIST WHERE DB = %s "
        "AND ID <> CONNECTION_ID() AND COMMAND = 'Query' AND TIME >= 1 "
        "AND COALESCE(INFO, '') NOT LIKE %s LIMIT 5"), (database, f"%{LOCK_MARK}%"))
    seen: dict[Any, dict[str, Any]] = {}
    for r in rows:
        if r["id"] not in ignore:
            seen.setdefault(r["id"], dict(r, exact=False))
    return list(seen.values())


def _rows_or_none(session: Session, sql: str, args: Sequence[Any]) -> list[dict[str, Any]]:
    """Rows, or none where the account may not look (INNODB_TRX needs PROCESS)."""
    try:
        return session.query_dicts(sql, args)
    except pymysql.err.MySQLError:
        return []


def describe(holders: list[dict[str, Any]]) -> str:
    """One line naming the blocking connections: id, account, seconds, what it runs."""
    if not holders:
        return "no blocking connection is visible to this account"
    parts = []
    for h in holders[:3]:
        info = " ".join(str(h.get("info") or "").split())[:INFO_CHARS]
        what = f"running {info!r}" if info else f"idle ({h.get('command') or '?'})"
        parts.append(f"connection {h['id']} ({h.get('user') or '?'}@{h.get('host') or '?'}, "
                     f"{h.get('time') or 0} s in transaction/statement, {what})")
    verb = "holds" if any(h.get("exact") for h in holders) else "may hold"
    return ", ".join(parts) + f" {verb} it"


def lock_tables(session: Session, items: Sequence[str], database: str, watch: Sequence[str],
                settings: Settings, *, cancelled: threading.Event | None = None,
                ignore: Collection[int] = (),
                on_wait: Callable[[str], None] | None = None) -> None:
    """`LOCK TABLES items` within `settings.lock_wait_total`; raises `LockBusy` naming the
    holders. `cancelled` set: give up (raises `LockBusy` too). `on_wait` hears each retry."""
    session.execute(f"SET SESSION lock_wait_timeout = {int(settings.lock_wait_timeout)}")
    deadline = time.monotonic() + settings.lock_wait_total
    delay = 0.25
    while True:
        if cancelled is not None and cancelled.is_set():
            raise LockBusy("interrupted while waiting for the metadata lock; nothing changed")
        holders = blockers(session, database, watch, ignore)
        if not any(h["exact"] for h in holders):
            try:
                session.execute("LOCK TABLES " + ", ".join(items))
                return
            except pymysql.err.OperationalError as exc:
                if exc.args[0] not in LOCK_WAIT_ERRORS:
                    raise
                holders = holders or blockers(session, database, watch, ignore)
        left = deadline - time.monotonic()
        if left <= 0:
            raise LockBusy(
                f"could not lock {', '.join(watch) or 'the tables'} within "
                f"{settings.lock_wait_total} s: {describe(holders)}; the old data is intact",
                hint="end that transaction (COMMIT/ROLLBACK in the application, or KILL <id>),"
                " or run again in a quiet window; settings.lock_wait_total sets how long to wait")
        message = f"metadata lock busy ({describe(holders)}); retrying in {delay:.1f} s"
        (on_wait or log.warning)(message)
        time.sleep(min(delay, max(left, 0.05)))
        delay = min(delay * 2, 8.0)


def wait_until_waiting(session: Session, connection_id: int, timeout: float = 10.0) -> bool:
    """Whether connection `connection_id` is seen waiting for a lock within `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = session.scalar(
            "SELECT STATE FROM information_schema.PROCESSLIST WHERE ID = %s", (connection_id,))
        if state is None and session.scalar(
                "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE ID = %s",
                (connection_id,)) == 0:
            return False
        if state and "lock" in str(state).lower():
            return True
        time.sleep(0.005)
    return False


class Holder:
    """One connection holding (or queued for) `LOCK TABLES <one table> <mode>`: a gate that
    is opened for one waiting statement and no other (see `handoff`)."""

    def __init__(self, session: Session, table: str, mode: str = "WRITE") -> None:
        self.session, self.table, self.mode = session, table, mode
        self.connection_id = int(session.scalar("SELECT CONNECTION_ID()"))
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.held = False

    @property
    def sql(self) -> str:
        return f"LOCK TABLES `{self.table.replace('`', '``')}` {self.mode}"

    def queue(self, timeout: int) -> None:
        """Ask for the lock in the background (it may be queued behind another holder)."""
        def take() -> None:
            try:
                self.session.execute(f"SET SESSION lock_wait_timeout = {int(timeout)}")
                self.session.execute(self.sql)
                self.held = True
            except pymysql.err.MySQLError as exc:
                self.error = exc
        self._thread = threading.Thread(target=take, daemon=True, name=f"hold-{self.table}")
        self._thread.start()

    def wait(self, timeout: float | None = None) -> bool:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.held

    def release(self) -> None:
        if self.held:
            self.session.execute("UNLOCK TABLES")
            self.held = False

    def close(self) -> None:
        self.session.close()


def has_lock_info(session: Session) -> bool:
    """Whether the server shows granted metadata locks (MariaDB's METADATA_LOCK_INFO)."""
    return bool(_rows_or_none(session, "SELECT 1 FROM information_schema.PLUGINS WHERE "
                              "PLUGIN_NAME = 'METADATA_LOCK_INFO' AND PLUGIN_STATUS = 'ACTIVE'",
                              ()))


STEP_GRACE = 0.05   # seconds a waiter gets to queue for its next lock, without the plugin


def handoff(watcher: Session, holders: Sequence[Holder], waiter_id: int) -> None:
    """Open the gates one by one for the statement of connection `waiter_id`.

    A statement takes its metadata locks one at a time, in the order of their names, and
    waits at the first one held by someone else. So the holders are released in that
    order, each once the waiter has got the previous table: the waiter is then the first
    in line for every table, and a queued application statement cannot slip in between."""
    plugin = has_lock_info(watcher)
    for holder in sorted(holders, key=lambda h: h.table.encode()):
        holder.release()
        _until_taken(watcher, waiter_id, holder.table, plugin)


def _until_taken(watcher: Session, waiter_id: int, table: str, plugin: bool) -> None:
    deadline = time.monotonic() + 2.0
    while time.monotonic() < deadline:
        if not watcher.scalar("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                              "WHERE ID = %s AND INFO IS NOT NULL", (waiter_id,)):
            return  # its statement is done
        if not plugin:
            time.sleep(STEP_GRACE)
            return
        if watcher.scalar("SELECT COUNT(*) FROM information_schema.METADATA_LOCK_INFO "
                          "WHERE THREAD_ID = %s AND TABLE_SCHEMA = DATABASE() "
                          "AND TABLE_NAME = %s", (waiter_id, table)):
            return
        time.sleep(0.002)
