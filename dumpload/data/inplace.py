"""Small tables replaced in place inside one target transaction: no DDL, no client process.

A *batch* is one or more whole groups of tables linked by foreign keys. One long-lived
target session (PyMySQL with LOCAL INFILE, the rows handed over through an in-process
pipe, see `load_stream`) runs, per batch:

    START TRANSACTION                       (REPEATABLE READ, foreign_key_checks = 0)
    DELETE FROM t                           each table: its rows and gaps are now locked
    write guard                             UPDATE_TIME of each table against its value when
                                            the copy started: a table written since is
                                            refused (rollback, exit 6), its write kept
    LOAD DATA LOCAL INTO t                  each table, rows read from the source snapshot
    count + checksum of t                   against the source's census of the same snapshot
    FK anti-joins                           every FK into or out of the batch's tables
    COMMIT

What it guarantees: readers (MVCC) see every table of a batch all-old or all-new; a
failure, or a SIGKILL of dumpload at any point before COMMIT, leaves the old rows (the
server rolls the transaction back); `foreign_key_checks = 0` keeps an `ON DELETE CASCADE`
of a table outside the copy from firing on the DELETE, and the anti-joins refuse rows that
would break an FK. A table with triggers never comes here (they would fire on the copied
rows): the planner sends it, with its FK group, to the shadow + swap path, and so are
non-transactional tables and tables above `settings.in_place_max_mb` on either side.

May touch: the rows of the batch's live tables, only inside its transaction.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pymysql

from dumpload import swap
from dumpload.config import DatabaseConfig, Settings
from dumpload.data import encode, shadow
from dumpload.data.stream import TARGET_SESSION, LoadFailed, SourceGone, SourceReader
from dumpload.data.tables import ForeignKey, TableInfo
from dumpload.data.verify import RangeMismatch, Sums, TableCheck, combine, table_checksum
from dumpload.db import Session, connect, fresh_table_stats, is_transient
from dumpload.errors import DataError, DumpLoadError, VerifyError
from dumpload.sqltext import elide_message, quote

if TYPE_CHECKING:
    from dumpload.data.engine import Run

log = logging.getLogger(__name__)

# Above this size (on the source or the target) a table takes the shadow + swap path
# (the default of `settings.in_place_max_mb`).
# Measured on the sandbox (MariaDB 11, a shared 2-core machine): a 200-row table costs
# ~3 ms in place against ~60-150 ms through shadow, CREATE, ALTER, RENAME and DROP; the
# row-by-row DELETE and index maintenance of the in-place path only catch up with the
# sorted index build of the shadow around 30-60 MB, and a long transaction holds its row
# locks longer, so the bar sits well below that.
MAX_BYTES = 16 * 1024 * 1024
MAX_ROWS = 50_000                # ... and above this many rows (counted, not estimated)
BATCH_BYTES = 32 * 1024 * 1024   # one transaction replaces up to this much ...
BATCH_TABLES = 250               # ... and up to this many tables


@dataclass(frozen=True)
class Part:
    """What one in-place replacement loads: a table, or a key range of it (delta)."""

    table: str
    where: str = ""


def batches(groups: Sequence[Sequence[str]], sizes: dict[str, int]) -> list[list[str]]:
    """Whole FK groups packed in order into batches of at most BATCH_BYTES / BATCH_TABLES
    (a group bigger than that is a batch of its own). Pure."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for group in groups:
        g_size = sum(sizes.get(t, 0) for t in group)
        if current and (size + g_size > BATCH_BYTES or len(current) + len(group) > BATCH_TABLES):
            out.append(current)
            current, size = [], 0
        current += list(group)
        size += g_size
    if current:
        out.append(current)
    return out


def open_session(env: DatabaseConfig, settings: Settings) -> Session:
    """A target session for in-place loads: LOCAL INFILE on, explicit transactions, the
    copy's session settings, row-lock waits bounded like the swap's metadata-lock waits."""
    s = connect(env, settings, autocommit=False, local_infile=True)
    s.execute(TARGET_SESSION)
    s.execute(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(settings.lock_wait_timeout))}")
    s.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    return s


Feed = Callable[[Callable[[bytes], None]], int]


def load_stream(session: Session, table: str, spec: encode.LoadSpec, feed: Feed,
                what: str) -> tuple[int, int]:
    """`LOAD DATA LOCAL` into `table` of the bytes `feed` writes; (rows loaded, bytes fed).

    The bytes travel through an OS pipe that PyMySQL reads as the "file" `/dev/fd/N`:
    nothing touches the disk and no process is started. The feed runs in a thread; if the
    load stops reading (an error), closing the pipe makes the feed's writes fail, so it
    cannot block. A warning fails the load (LOCAL turns errors into warnings)."""
    r, w = os.pipe()
    fed: list[int] = []
    failure: list[BaseException] = []

    def write_all(block: bytes) -> None:
        view = memoryview(block)
        while view:
            view = view[os.write(w, view):]

    def pump() -> None:
        try:
            fed.append(feed(write_all))
        except BaseException as exc:  # re-raised by the loading thread below
            failure.append(exc)
        finally:
            os.close(w)

    writer = threading.Thread(target=pump, name=f"dumpload-feed-{table}", daemon=True)
    writer.start()
    try:
        with session.conn.cursor() as cur:
            rows = cur.execute(encode.load_sql(table, spec, f"/dev/fd/{r}"))
            warnings = cur.warning_count
            detail = ""
            if warnings:
                cur.execute("SHOW WARNINGS LIMIT 5")
                detail = "; ".join(elide_message(" ".join(str(x) for x in w[1:]))
                                   for w in cur.fetchall())
    finally:
        os.close(r)
        writer.join()
    if failure:
        raise failure[0]
    if warnings:
        raise LoadFailed(f"{what}: the server reported {warnings} warning(s) while loading: "
                         f"{detail}", retryable=False,
                         hint="the target table must have the source's structure: run "
                         "`dumpload structure` first")
    return rows, fed[0] if fed else 0


def census(reader: SourceReader, info: TableInfo, where: str, kind: str,
            flavor: str) -> tuple[int, int, int]:
    sql = encode.census_sql(info.name, info.columns, where, kind or "md5", flavor)
    assert sql is not None  # a kind is always given: there is always a census
    out = bytearray()
    reader.stream(sql, out.extend)
    rows, total, words = (int(x) for x in out.decode().split("\t"))
    return rows, total, words


def copy_part(session: Session, reader: SourceReader, info: TableInfo, where: str,
              kind: str, flavor: str, advance: Callable[[int, int], None]
              ) -> tuple[int, int, Sums]:
    """Load the source rows of `info` matching `where` into the live table (inside the
    caller's transaction, after its DELETE); (rows, bytes, the source's sums)."""
    rows, total, words = census(reader, info, where, kind, flavor)
    parts = encode.client_parts(info.name, info.copied_columns, where, flavor,
                                null_words=words > 0)
    loaded = size = 0
    for part in parts:
        def feed(sink: Callable[[bytes], None], sql: str = part.select) -> int:
            def counted(block: bytes) -> None:
                sink(block)
                advance(block.count(b"\n"), len(block))
            return reader.stream(sql, counted)
        n, b = load_stream(session, info.name, part.spec, feed, f"in-place load of {info.name}")
        loaded += n
        size += b
    if loaded != rows:
        raise LoadFailed(f"{info.name}: the source has {rows} rows"
                         + (f" in {where}" if where else "") + f" but {loaded} were loaded",
                         retryable=False, hint="the old rows are kept; run again, and if it "
                         "repeats, report it with the run log")
    return loaded, size, (rows, total)


def check_guard(session: Session, guard: dict[str, swap.Fingerprint],
                tables: Sequence[str], database: str) -> None:
    """Refuse (exit 6) when a table was written since its copy started. Called after the
    DELETE: from then on the rows and gaps it replaces are locked by this transaction, so
    no write to them can slip in between this check and the COMMIT (a delta leaves the
    other ranges open: a write there is kept, never overwritten)."""
    names = [t for t in tables if t in guard]
    if not names:
        return
    fresh_table_stats(session)
    rows = session.query(
        "SELECT TABLE_NAME, UPDATE_TIME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        "DATABASE() AND TABLE_NAME IN (" + ", ".join(["%s"] * len(names)) + ")", names)
    changed = [name for name, updated in rows if swap.changed_since(guard[name], updated)]
    if changed:
        raise swap.TargetChanged(
            f"{', '.join(changed)} on {database} changed during the copy (written since "
            f"{guard[changed[0]].taken_at}); not replaced, the application's write is kept",
            hint="run again when the writes have stopped, or use --lock-target to block "
            "writes to each table while it is copied")


def replace_batch(run: Run, reader: SourceReader, session: Session, tables: list[str],
                  fks: list[ForeignKey], flavor: str) -> Session:
    """Replace `tables` in one transaction (module docstring); statuses in `run.results`.

    A transient failure (deadlock, lost connection) retries the whole batch; any other
    failure fails every table of the batch with the old rows kept. Returns the session to
    use next (a new one when the connection was lost)."""
    attempts = max(1, run.settings.retry_attempts)
    for attempt in range(1, attempts + 1):
        try:
            _replace_once(run, reader, session, tables, fks, flavor)
            return session
        except (pymysql.err.MySQLError, LoadFailed) as exc:
            rollback(session)
            retry = (is_transient(exc) if isinstance(exc, pymysql.err.MySQLError)
                     else exc.retryable)
            if not retry or attempt == attempts:
                error = exc if isinstance(exc, DumpLoadError) else DataError(
                    f"in-place replacement of {', '.join(tables[:5])}"
                    f"{' ...' if len(tables) > 5 else ''}: {elide_message(str(exc))}")
                for t in tables:
                    run.fail(t, error)
                return session
            log.warning("in-place batch %s...: %s; retrying (attempt %d of %d)", tables[0],
                        elide_message(str(exc)), attempt + 1, attempts)
            session = _fresh(run, session)
            _reset_progress(run, tables)
        except SourceGone:
            rollback(session)
            raise
        except DumpLoadError as exc:
            rollback(session)
            for t in tables:
                run.fail(t, exc)
            return session
        except BaseException:
            rollback(session)
            raise
    return session


def _replace_once(run: Run, reader: SourceReader, session: Session, tables: list[str],
                  fks: list[ForeignKey], flavor: str) -> None:
    started = time.monotonic()
    received, sent = _bytes_received(session), reader.bytes_sent()
    session.execute("START TRANSACTION")
    for t in tables:
        session.execute(f"DELETE FROM {quote(t)}")
    check_guard(session, run.guard, tables, run.target_env.database)
    sums: dict[str, Sums] = {}
    for t in tables:
        info = run.plans[t].info
        assert info is not None

        def advance(rows: int, size: int, table: str = t) -> None:
            run.progress.advance(table, rows, size)
        rows, size, sums[t] = copy_part(session, reader, info, "", run.kind, flavor, advance)
        result = run.results[t]
        result.rows, result.bytes = rows, size
    _verify(run, session, tables, sums)
    shadow.check_foreign_keys(session, {}, run.target_env.database, fks)
    session.execute("COMMIT")
    _share_wire(run, tables, _bytes_received(session) - received, reader.bytes_sent() - sent)
    seconds = round((time.monotonic() - started) / max(1, len(tables)), 4)
    for t in tables:
        run.results[t].status = "swapped"
        run.results[t].strategy = "in-place"
        run.results[t].phases["in_place"] = seconds
        run.progress.table_done(t, "done")


def _bytes_received(session: Session) -> int:
    """The target server's count of bytes received on this connection (what crossed the
    wire, protocol framing included)."""
    return int(session.query("SHOW SESSION STATUS LIKE 'Bytes_received'")[0][1])


def _share_wire(run: Run, tables: list[str], target: int, source: int) -> None:
    """A batch's wire bytes, shared among its tables by the bytes each read."""
    total = sum(run.results[t].bytes for t in tables) or 1
    for t in tables:
        share = run.results[t].bytes / total
        run.results[t].target_wire_bytes = round(target * share)
        run.results[t].source_wire_bytes = round(source * share)


def _verify(run: Run, session: Session, tables: list[str], sums: dict[str, Sums]) -> None:
    """The loaded rows against the source's census, inside the transaction."""
    kind = run.kind or "md5"
    for t in tables:
        info = run.plans[t].info
        assert info is not None
        got = table_checksum(session, info, "", kind)
        want = sums[t]
        check = TableCheck(t, source_rows=want[0], target_rows=got[0],
                           source_checksum=combine([want]), target_checksum=combine([got]))
        if got != want:
            check.mismatches = [RangeMismatch("all rows", want, got)]
        if run.kind:
            run.checks[t] = check
        if not check.ok:
            run.results[t].status = "mismatch"
            raise VerifyError(f"{t}: the loaded rows differ from the source ({want[0]} rows "
                              f"{check.source_checksum} vs {got[0]} rows "
                              f"{check.target_checksum}); rolled back, the target keeps its "
                              "old data", hint="run again; if it repeats, report it with the "
                              "run log")


def rollback(session: Session) -> None:
    with contextlib.suppress(pymysql.err.Error):
        session.conn.rollback()


def _fresh(run: Run, session: Session) -> Session:
    try:
        session.conn.ping(reconnect=False)
        return session
    except pymysql.err.Error:
        session.close()
        return open_session(run.target_env, run.settings)


def _reset_progress(run: Run, tables: list[str]) -> None:
    for t in tables:
        result = run.results[t]
        result.rows = result.bytes = 0
        result.retries += 1
