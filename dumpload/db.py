"""PyMySQL sessions: connect with retries, pin session settings, know the server flavor.

Every session dumpload opens is pinned to UTC (`time_zone='+00:00'`), `utf8mb4` and an
explicit `sql_mode`, so that values read on one server mean the same on the other. Only
catalog queries and control statements go through here; table rows never do.

A server error raised by a session's statement keeps its PyMySQL class and error number,
but its message has the row values it quotes elided (`Duplicate entry ? for key ...`) and
it carries the statement as `statement`, cut to 200 characters with every literal elided:
what reaches a log or an error message never holds row data.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import ssl
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import pymysql
import pymysql.cursors
from tenacity import (
    RetryCallState,
    retry,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from dumpload.config import DatabaseConfig, Settings
from dumpload.errors import ConnectError
from dumpload.flavor import Flavor
from dumpload.sqltext import elide_message, elide_values

log = logging.getLogger(__name__)

# Permissive enough to carry zero dates and explicit zeros in AUTO_INCREMENT columns from
# one server to the other, strict about engines so a typo never silently becomes MyISAM.
SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

# Client/server error numbers worth a retry: the server may come back or the lock clear.
TRANSIENT_ERRORS = {
    2002: "cannot connect (socket)",
    2003: "cannot connect",
    2006: "server has gone away",
    2013: "lost connection during query",
    1205: "lock wait timeout",
    1213: "deadlock",
}
AUTH_ERRORS = {1045, 1044, 1698}

T = TypeVar("T")


@dataclass(frozen=True)
class ServerInfo:
    """What kind of server a session talks to. `flavor` is "mariadb" or "mysql"."""

    flavor: str
    version: tuple[int, int, int]
    version_string: str
    capabilities: int | None = None   # the handshake's flags (e.g. which compression)

    @property
    def is_mariadb(self) -> bool:
        return self.flavor == "mariadb"

    @property
    def kind(self) -> Flavor:
        """The flavor and version as one value with its predicates (`dumpload.flavor`)."""
        return Flavor.of(self.flavor, self.version)

    def __str__(self) -> str:
        name = "MariaDB" if self.is_mariadb else "MySQL"
        return f"{name} {'.'.join(map(str, self.version))}"


def parse_server_version(version_string: str) -> ServerInfo:
    """`10.11.19-MariaDB-0+deb12u1` → mariadb 10.11.19; `8.4.3` → mysql 8.4.3."""
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", version_string)
    numbers = tuple(int(x) for x in match.groups()) if match else (0, 0, 0)
    flavor = "mariadb" if "mariadb" in version_string.lower() else "mysql"
    return ServerInfo(flavor, numbers, version_string)  # type: ignore[arg-type]


class Session:
    """One open connection to one environment, with its server info."""

    def __init__(self, conn: pymysql.connections.Connection, env: DatabaseConfig,
                 server: ServerInfo) -> None:
        self.conn = conn
        self.env = env
        self.server = server

    def query(self, sql: str, args: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self.conn.cursor() as cur, _elided(sql):
            cur.execute(sql, args)
            return list(cur.fetchall())

    def query_dicts(self, sql: str, args: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        with self.conn.cursor(pymysql.cursors.DictCursor) as cur, _elided(sql):
            cur.execute(sql, args)
            return list(cur.fetchall())

    def scalar(self, sql: str, args: Sequence[Any] | None = None) -> Any:
        rows = self.query(sql, args)
        return rows[0][0] if rows else None

    def execute(self, sql: str, args: Sequence[Any] | None = None) -> int:
        with self.conn.cursor() as cur, _elided(sql):
            return int(cur.execute(sql, args))

    def send(self, statement: bytes) -> None:
        """Run one statement given as the bytes of a dump (no parameters, no result read
        but its status): how a restore replays a backup's rows without a client process."""
        with _elided(statement[:200].decode("utf-8", "replace")):
            self.conn.query(statement)

    def close(self) -> None:
        with contextlib.suppress(pymysql.err.Error):  # already gone: closing is best effort
            self.conn.close()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Connections a command holds on a server besides one per worker (catalog, swap, a spare).
RESERVED_CONNECTIONS = 3


def usable_threads(wanted: int, *sessions: Session, per_worker: int = 1) -> int:
    """`wanted` workers, lowered so that they fit under every server's `max_connections`
    next to the connections already open there (with a warning saying so); at least 1.

    `settings.threads` and `--threads` are capped at 64 by the CLI; a server configured
    for fewer connections would refuse workers mid-copy instead.
    """
    allowed = wanted
    for s in sessions:
        limit = int(s.scalar("SELECT @@GLOBAL.max_connections"))
        used = int(s.query("SHOW GLOBAL STATUS LIKE 'Threads_connected'")[0][1])
        room = max(1, (limit - used - RESERVED_CONNECTIONS) // per_worker)
        if room < allowed:
            log.warning("%s: using %d thread(s) instead of %d: max_connections is %d and %d "
                        "connection(s) are open", s.env.name, room, allowed, limit, used)
            allowed = room
    return allowed


@contextmanager
def _elided(sql: str) -> Iterator[None]:
    """Re-raise a server error with the values in its message elided and the statement
    attached (elided) as `statement`; same class and args[0], so callers see no change."""
    try:
        yield
    except pymysql.err.MySQLError as exc:
        raise elided_error(exc, sql) from None


def elided_error(exc: pymysql.err.MySQLError, sql: str = "") -> pymysql.err.MySQLError:
    """`exc` as a new error of its class whose message quotes no row value."""
    args = [elide_message(a) if isinstance(a, str) else a for a in exc.args]
    new = type(exc)(*args)
    new.statement = elide_values(sql) if sql else ""
    return new


def fresh_table_stats(session: Session) -> None:
    """Make `information_schema.TABLES` (UPDATE_TIME, sizes) current for this session:
    MySQL 8 caches them for a day by default (`information_schema_stats_expiry`);
    MariaDB never caches them."""
    if not session.server.is_mariadb:
        session.execute("SET SESSION information_schema_stats_expiry = 0")


def is_transient(exc: BaseException) -> bool:
    """Errors that a later attempt may not meet: connection loss, deadlock, lock wait."""
    return (isinstance(exc, pymysql.err.OperationalError | pymysql.err.InternalError)
            and bool(exc.args) and exc.args[0] in TRANSIENT_ERRORS)


def _log_retry(what: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        log.warning("%s failed (attempt %d): %s; retrying in %.1f s", what,
                    state.attempt_number, exc, state.next_action.sleep if state.next_action else 0)
    return before_sleep


def with_retry(fn: Callable[[], T], settings: Settings, what: str) -> T:
    """Run `fn`, retrying transient server errors with exponential backoff."""
    retrying = retry(
        retry=retry_if_exception(is_transient),
        stop=stop_after_attempt(settings.retry_attempts),
        wait=wait_exponential(multiplier=0.5, max=8),
        before_sleep=_log_retry(what),
        reraise=True,
    )
    return retrying(fn)()


_PREFERRED_TLS: ssl.SSLContext | None = None


class _Connection(pymysql.connections.Connection):  # type: ignore[misc]  # PyMySQL: no stubs
    """PyMySQL's connection, sharing one TLS context for its opportunistic ("preferred")
    TLS. PyMySQL builds a context per connection, reading the system CA store each time:
    ~30 ms of CPU, which a copy opening dozens of connections pays again and again.
    Explicit `ssl_*` settings still get their own context."""

    def _create_ssl_ctx(self, sslp: Any) -> ssl.SSLContext:
        global _PREFERRED_TLS
        if sslp:
            return super()._create_ssl_ctx(sslp)  # type: ignore[no-any-return]
        if _PREFERRED_TLS is None:
            _PREFERRED_TLS = super()._create_ssl_ctx(sslp)
        return _PREFERRED_TLS


def connect(env: DatabaseConfig, settings: Settings, *, database: bool = True,
            autocommit: bool = True, sql_mode: str = SQL_MODE,
            read_timeout: int | None = None, local_infile: bool = False) -> Session:
    """Open a session to `env`, retried per settings; raise `ConnectError` (exit 4) on failure.

    With `database=False` no default schema is selected (for creating it, or for doctor).
    `local_infile`: the session may answer `LOAD DATA LOCAL` (only the data copy's loaders).
    """
    kwargs = _connect_kwargs(env, settings, database, autocommit, read_timeout)
    kwargs["local_infile"] = local_infile
    init = f"SET time_zone='+00:00', NAMES utf8mb4, sql_mode='{sql_mode}'"
    kwargs["init_command"] = init
    try:
        conn = with_retry(lambda: _Connection(**kwargs), settings, f"connecting to {env.name}")
    except pymysql.err.MySQLError as exc:
        raise _connect_error(env, exc) from None
    except (ssl.SSLError, OSError) as exc:  # bad CA/cert file, or a failed TLS handshake
        raise ConnectError(f"TLS setup for environment {env.name!r} ({env.address}) failed: "
                           f"{exc}", hint="check ssl_ca/ssl_cert/ssl_key in the config") from None
    # The handshake may carry a "5.5.5-" prefix (MariaDB); VERSION() never does.
    with conn.cursor() as cur:
        cur.execute("SELECT VERSION()")
        server = parse_server_version(cur.fetchone()[0])
    server = dataclasses.replace(server, capabilities=conn.server_capabilities)
    session = Session(conn, env, server)
    if env.tls:
        _refuse_plaintext(session)
    return session


@contextmanager
def session(env: DatabaseConfig, settings: Settings, **kwargs: Any) -> Iterator[Session]:
    """`connect` as a context manager that always closes."""
    s = connect(env, settings, **kwargs)
    try:
        yield s
    finally:
        s.close()


def _connect_kwargs(env: DatabaseConfig, settings: Settings, database: bool, autocommit: bool,
                    read_timeout: int | None) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "user": env.user, "password": env.password or "", "charset": "utf8mb4",
        "connect_timeout": settings.connection_timeout, "autocommit": autocommit,
        "local_infile": False, "read_timeout": read_timeout,
    }
    if env.socket:
        kwargs["unix_socket"] = env.socket
    else:
        kwargs["host"], kwargs["port"] = env.host, env.port
    if database:
        kwargs["database"] = env.database
    if env.option_file:
        kwargs["read_default_file"] = str(env.option_file)
    if env.tls:
        kwargs["ssl"] = _ssl_options(env)
    return kwargs


def _ssl_options(env: DatabaseConfig) -> dict[str, Any]:
    ssl: dict[str, Any] = {"check_hostname": env.ssl_verify_identity}
    if env.ssl_ca:
        ssl["ca"] = str(env.ssl_ca)
    if env.ssl_cert:
        ssl["cert"] = str(env.ssl_cert)
    if env.ssl_key:
        ssl["key"] = str(env.ssl_key)
    return ssl


def _refuse_plaintext(session: Session) -> None:
    # PyMySQL silently skips TLS when the server does not offer it; we never downgrade.
    cipher = session.query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
    if not cipher or not cipher[0][1]:
        session.close()
        env = session.env
        raise ConnectError(
            f"{env.name}: TLS is configured but the connection to {env.address} is not "
            f"encrypted; refusing to continue in plaintext",
            hint="enable TLS on the server (ssl_cert/ssl_key) or remove the ssl_* keys")


def _connect_error(env: DatabaseConfig, exc: pymysql.err.MySQLError) -> ConnectError:
    code = exc.args[0] if exc.args else None
    where = f"environment {env.name!r} ({env.user}@{env.address}, database {env.database!r})"
    detail = str(exc.args[1]) if len(exc.args) > 1 else str(exc)
    if env.password:
        detail = detail.replace(env.password, "********")
    if code in AUTH_ERRORS:
        return ConnectError(f"authentication failed for {where}: {detail}",
                            hint="check the user and its password source in the config")
    if code == 2026 or "SSL" in detail:
        return ConnectError(f"TLS to {where} failed, refusing to fall back to plaintext: "
                            f"{detail}", hint="enable TLS on the server, or fix the ssl_* keys")
    if code == 1049:
        return ConnectError(f"database {env.database!r} does not exist on {where}",
                            hint="create it, or fix 'database' in the config")
    return ConnectError(f"cannot connect to {where}: {detail}",
                        hint="check that the server is running and reachable, "
                        "and the host/port/socket in the config")
