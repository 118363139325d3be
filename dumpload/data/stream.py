"""Byte streams between the servers' own clients; Python relays, counts, never decodes rows.

A `SourceReader` is one long-lived source client (`mariadb --batch --quick --unbuffered`,
plus `--raw` for the SERVER text format, see `encode`) fed SQL on stdin: it opens one
snapshot transaction and then runs one SELECT per chunk inside it. After each SELECT it
runs `SELECT '<token>'`; the relay stops at that line (and drops it), so one process
serves many chunks from one snapshot, and a chunk can be re-read from the same snapshot
when its load failed.

`open_snapshot` opens the readers of one copy in one moment of the source: a coordinator
session holds `LOCK TABLES ... READ` while each reader starts its snapshot.

A `Loader` is one target client per chunk running `LOAD DATA LOCAL INFILE '/dev/stdin'`
and then printing `ROW_COUNT()` and the warning count. LOCAL turns errors into warnings,
so any warning fails the chunk (with the first warnings as the message): nothing is ever
silently truncated or skipped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import subprocess
import uuid
from collections.abc import Callable, Sequence

import pymysql

from dumpload.db import Session
from dumpload.errors import DataError, ToolError
from dumpload.sqltext import elide_message, quote
from dumpload.tools import Binary, ClientDefaults, Process, base_argv, widen_pipe

log = logging.getLogger(__name__)

BLOCK = 1 << 20
# Long waits are normal in a pipeline (the other side may be building an index): the
# servers must not time the connection out meanwhile.
SOURCE_SESSION = ("SET SESSION time_zone = '+00:00', net_write_timeout = 86400, "
                  "net_read_timeout = 86400, wait_timeout = 86400")
# unique_checks stays 1: with both checks off, MariaDB 10.6+ turns the first insert into an
# empty table into a "bulk insert" that locks the table for its whole transaction, which
# serialises the parallel chunk loads (2 streams of 1 M rows: 14.7 s against 10.1 s).
# The shadow has no secondary unique index during the load, so the flag costs nothing.
# sql_notes = 0: a STORED generated column whose expression is rounded to its type
# (`DECIMAL(9,2) AS (price * 1.2)`) raises Note 1265 on every row, and a note would fail
# the load (any warning does). Notes never mean a lost value of a copied column here: the
# target has the source's column types, and the checksums compare every value anyway.
TARGET_SESSION = ("SET SESSION time_zone = '+00:00', sql_notes = 0, "
                  "sql_mode = 'NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION', "
                  "unique_checks = 1, foreign_key_checks = 0, "
                  "net_read_timeout = 86400, net_write_timeout = 86400")


class SourceGone(DataError):
    """The source client died or failed: its snapshot is lost."""


class LoadFailed(DataError):
    """A chunk's load on the target failed; `retryable` when the cause may be transient."""

    def __init__(self, message: str, *, retryable: bool, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.retryable = retryable


def client_argv(binary: Binary, defaults: ClientDefaults, database: str,
                *extra: str) -> list[str]:
    """The client's argv: the database as one `--database=NAME` word (a name never stands
    alone in argv, where it could read as an option); table names only inside SQL."""
    return [*base_argv(binary, defaults), "--batch", "--skip-column-names",
            "--default-character-set=binary", *extra, f"--database={database}"]


class SourceReader:
    """One source client process holding one snapshot; `stream()` relays a SELECT's rows."""

    def __init__(self, binary: Binary, defaults: ClientDefaults, database: str, what: str, *,
                 raw: bool = True, wire: Sequence[str] = ()) -> None:
        # raw: the SELECTs escape the values themselves (encode.SERVER); else the client
        # escapes them (encode.CLIENT), and must print binary strings as they are.
        # wire: protocol compression options (tools.wire_args).
        mode = ["--raw"] if raw else ["--loose-skip-binary-as-hex"]
        argv = client_argv(binary, defaults, database, *mode, *wire, "--quick", "--unbuffered")
        self.proc = Process(argv, what=what, stdin=subprocess.PIPE, defaults=defaults)
        self.token = f"__dumpload_end_{uuid.uuid4().hex}__".encode()
        self._fd = self.proc.stdout.fileno()
        widen_pipe(self._fd)

    def _send(self, sql: str) -> None:
        try:
            self.proc.stdin.write(sql.encode("utf-8") + b";\n")
            self.proc.stdin.flush()
        except OSError:
            raise self._gone() from None

    def _gone(self) -> SourceGone:
        self.proc.kill()
        return SourceGone(f"{self.proc.what} failed: {self.proc.stderr_text() or 'exited'}",
                          hint="check the source server's error log, then run again")

    def begin(self, isolation_sql: str = SOURCE_SESSION) -> None:
        """Session settings, then open the snapshot (returns once the server has it)."""
        self._send(isolation_sql)
        self._send("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        self._send("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        self.stream(None, lambda block: None)

    def stream(self, select: str | None, sink: Callable[[bytes], None]) -> int:
        """Run `select` (None: nothing) and pass its output to `sink`; returns bytes sent.

        Always reads up to the end marker, so the reader is ready for the next chunk even
        when `sink` raised (the exception is re-raised after draining).
        """
        if select:
            self._send(select)
        self._send(f"SELECT '{self.token.decode()}'")
        marker = self.token + b"\n"
        pending, total, failure = b"", 0, None
        while True:
            block = os.read(self._fd, BLOCK)
            if not block:
                raise self._gone()
            if pending:
                block = pending + block
            end = _find_marker(block, marker)
            if end >= 0:
                out, pending = block[:end], b""
            else:
                out, pending = _hold_back(block, marker)
            if out and failure is None:
                try:
                    sink(out)
                except Exception as exc:  # drain the rest, then report the sink's error
                    failure = exc
            total += len(out)
            if end >= 0:
                break
        if failure is not None:
            raise failure
        return total

    def bytes_sent(self) -> int:
        """The source server's count of bytes it sent on this connection (`Bytes_sent`):
        what crossed the wire, compressed or not, protocol framing included."""
        out = bytearray()
        self.stream("SHOW SESSION STATUS LIKE 'Bytes_sent'", out.extend)
        return _status_value(bytes(out), "Bytes_sent")

    def close(self) -> None:
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.proc.close()


def _hold_back(buffer: bytes, marker: bytes) -> tuple[bytes, bytes]:
    """(what can be passed on, the start of a marker line cut at the end of `buffer`).

    A marker line starts a line, so only what follows the last newline can be one; most
    buffers go on whole, without a copy.
    """
    start = buffer.rfind(b"\n") + 1
    if len(buffer) - start < len(marker) and marker.startswith(buffer[start:]):
        return buffer[:start], buffer[start:]
    return buffer, b""


def _find_marker(buffer: bytes, marker: bytes) -> int:
    """Offset of the marker line in `buffer` (at the start or after a newline), or -1."""
    if buffer.startswith(marker):
        return 0
    at = buffer.find(b"\n" + marker)
    return at + 1 if at >= 0 else -1


# Server errors a later attempt may not meet (the client prints `ERROR <code> ...`).
TRANSIENT_CODES = {1205, 1213, 2002, 2003, 2006, 2013, 1040, 1053}


def transient(stderr: str) -> bool:
    """Whether a failed client's stderr may be worth another attempt: a transient server
    error, or no server error at all (killed, crashed). Access denied, local_infile
    disabled, unknown column, duplicate key and the like are permanent."""
    codes = [int(c) for c in re.findall(r"\bERROR (\d+)", stderr)]
    return not codes or all(c in TRANSIENT_CODES for c in codes)


class Loader:
    """One target client running one LOAD DATA from its stdin.

    It first prints its connection id (`connection_id`), so that a watchdog can notice
    when the server side of the load is gone: a client whose connection was killed
    mid-load may otherwise sit for minutes on a half-closed socket.
    """

    def __init__(self, binary: Binary, defaults: ClientDefaults, database: str, load_sql: str,
                 what: str, *, wire: Sequence[str] = ()) -> None:
        # The last line is the target server's count of bytes received on this connection:
        # the load's size on the wire (`wire_bytes`, set by `finish`).
        script = (f"SELECT CONNECTION_ID(); {TARGET_SESSION}; {load_sql}; "
                  "SELECT ROW_COUNT(), @@warning_count; SHOW WARNINGS LIMIT 5; "
                  "SHOW SESSION STATUS LIKE 'Bytes_received'")
        argv = client_argv(binary, defaults, database, "--local-infile=1", *wire,
                           "--unbuffered", f"--execute={script}")
        self.wire_bytes = 0
        self.proc = Process(argv, what=what, stdin=subprocess.PIPE, defaults=defaults)
        self.what = what
        widen_pipe(self.proc.stdin.fileno())
        first = self.proc.stdout.readline()
        if not first.strip().isdigit():
            self.proc.kill()
            error = self._error()
            raise LoadFailed(f"{what}: the target client did not start: {error}",
                             retryable=transient(error))
        self.connection_id = int(first)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def write(self, block: bytes) -> None:
        try:
            self.proc.stdin.write(block)
        except OSError:  # the client went away; finish() says why
            raise LoadFailed(f"{self.what}: the load stopped early: {self._error()}",
                             retryable=True) from None

    def _error(self) -> str:
        self.proc.wait()
        return self.proc.stderr_text() or f"exit {self.proc.popen.returncode}"

    def finish(self) -> int:
        """Close the stream, check the load; returns the rows the server loaded."""
        with contextlib.suppress(OSError):
            self.proc.stdin.close()
        out = self.proc.stdout.read()
        try:
            self.proc.check()
        except ToolError as exc:
            raise LoadFailed(f"{self.what}: {exc.stderr or exc}",
                             retryable=transient(exc.stderr or "")) from None
        lines = out.decode("utf-8", "replace").strip().splitlines()
        if lines and lines[-1].startswith("Bytes_received\t"):
            self.wire_bytes = _status_value(lines.pop().encode(), "Bytes_received")
        rows, warnings = (int(x) for x in lines[0].split("\t")[:2])
        if warnings:
            detail = "; ".join(elide_message(" ".join(w.split("\t")[1:])) for w in lines[1:6])
            raise LoadFailed(f"{self.what}: the server reported {warnings} warning(s) while "
                             f"loading: {detail}", retryable=False,
                             hint="the target table must have the source's structure: "
                             "run `dumpload structure` first")
        return rows

    def abort(self) -> None:
        """Kill the client: the server rolls the unfinished LOAD back."""
        self.proc.kill()
        self.proc.close()

    def close(self) -> None:
        self.proc.close()


def _status_value(output: bytes, name: str) -> int:
    """The number in a `SHOW SESSION STATUS LIKE 'name'` line (`name<TAB>value`)."""
    for line in output.decode("utf-8", "replace").splitlines():
        key, _, value = line.partition("\t")
        if key == name and value.strip().isdigit():
            return int(value)
    raise DataError(f"could not read {name} from the server: {output[:200]!r}")


def open_snapshot(src: Session, binary: Binary, defaults: ClientDefaults, tables: list[str],
                  workers: int, *, raw: bool = True,
                  wire: Sequence[str] = ()) -> list[SourceReader]:
    """All workers' snapshots opened while writes to the tables are held by a READ lock.

    `raw`: readers for the SERVER text format (see `encode`), else for CLIENT."""
    locked = _lock_source(src, tables)
    readers: list[SourceReader] = []
    try:
        for i in range(workers):
            reader = SourceReader(binary, defaults, src.env.database,
                                  f"source reader {i + 1} ({src.env.name})", raw=raw,
                                  wire=wire)
            readers.append(reader)
            reader.begin()
    except BaseException:
        for r in readers:
            r.close()
        raise
    finally:
        if locked:
            src.execute("UNLOCK TABLES")
    return readers


def _lock_source(src: Session, tables: list[str]) -> bool:
    try:
        src.execute("LOCK TABLES " + ", ".join(f"{quote(t)} READ" for t in tables))
        return True
    except pymysql.err.MySQLError as exc:
        log.warning("could not lock the source tables for one snapshot (%s); each worker "
                    "reads its own snapshot, taken at nearly the same moment", exc)
        return False
