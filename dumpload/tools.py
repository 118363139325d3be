"""The one place that finds and runs the servers' own binaries.

Credentials never touch a filesystem. A database's `[client]` option text (user, password,
host, TLS) lives in an anonymous memory file (`memfd_create`, mode 0600, sealed) that the
child inherits through `pass_fds` and reads as `--defaults-extra-file=/dev/fd/N`; where
memfd is unavailable each child gets its own pipe holding the text instead. Nothing is
left behind when dumpload is killed (SIGKILL included): the kernel frees both with the
last process holding them. Passwords are never in argv or the environment, so no
`/proc/*/cmdline` or `/proc/*/environ` shows one. Checked on MariaDB 10.11's `mariadb` and
`mariadb-dump` (several clients reading one memfd at once, and the pipe form). MySQL's
tools read option files the same way (`stat` + `fopen` of the path, no `realpath`); the
file must not be world-writable, or both flavors ignore it silently and fall back to the
default socket, hence the explicit 0600.

No name is ever an option. Table, view, trigger and database names reach the tools only
in ways they never parse as flags:
- the dump tool gets `--` (end of options) right before the database and table names:
  both flavors' option parser (`my_getopt`) stops at a bare `--` and takes every later
  word as a name. Without it, a table named `--result-file=/tmp/x.sql` made
  `mariadb-dump` write the dump to /tmp/x.sql (seen on MariaDB 10.11);
- the client gets the database as one word, `--database=NAME`, and every other name only
  inside SQL text (backtick-quoted by `sqltext.quote`) on its stdin or in one
  `--execute=SQL` word — never as a bare argv word.
Every argv is logged; every exit status is checked; stderr is kept for the error message,
with literal values elided (`sqltext.elide_message`).

Protocol compression (`compress` per database) is decided here too, once, from literal
version strings (`choose_compression`, pure): callers add `wire_args(...)` to the argv of
every client that moves rows or dumps; nothing else spells `--compress`.

Short commands run through `sh`. Byte streams (dumps, table copies) run through
`subprocess.Popen`: relaying 500 MB through `sh` output callbacks took 9.6 s against
0.8 s for a plain pipe read on this machine, and the data path must not pay that.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import ipaddress
import logging
import os
import re
import shutil
import socket as socketlib
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import sh

from dumpload.config import DatabaseConfig
from dumpload.errors import ConfigError, ToolError
from dumpload.sqltext import elide_message

if TYPE_CHECKING:
    from dumpload.db import ServerInfo

log = logging.getLogger(__name__)

# Names to look for, in order of preference, per server flavor.
_CANDIDATES = {
    ("dump", "mariadb"): ("mariadb-dump", "mysqldump"),
    ("dump", "mysql"): ("mysqldump", "mariadb-dump"),
    ("client", "mariadb"): ("mariadb", "mysql"),
    ("client", "mysql"): ("mysql", "mariadb"),
}
_EXTRA_PATH = ("/usr/bin", "/usr/local/bin", "/usr/local/mysql/bin", "/opt/homebrew/bin")
STDERR_KEEP = 4000  # characters of a tool's stderr kept for the error message


@dataclass(frozen=True)
class Binary:
    """A found native tool: its path, what it calls itself, and whose it is."""

    path: str
    version: str

    @property
    def is_mariadb(self) -> bool:
        return "mariadb" in self.version.lower()

    @property
    def name(self) -> str:
        return Path(self.path).name

    @property
    def short_version(self) -> str:
        """`10.11.19-MariaDB` or `8.4.3` out of the tool's long --version line."""
        match = (re.search(r"Distrib (\S+?),", self.version)
                 or re.search(r"Ver (\S+)", self.version))
        return match.group(1) if match else self.version


def find_binary(kind: str, flavor: str = "mariadb") -> Binary:
    """The dump (`kind="dump"`) or client (`kind="client"`) binary for a server flavor.

    A MariaDB server prefers MariaDB's tools and a MySQL server MySQL's; either works
    against both for what dumpload asks of them.
    """
    path_dirs = os.environ.get("PATH", "").split(os.pathsep) + list(_EXTRA_PATH)
    for name in _CANDIDATES[(kind, flavor)]:
        found = shutil.which(name, path=os.pathsep.join(path_dirs))
        if found:
            return Binary(found, binary_version(found))
    names = " or ".join(_CANDIDATES[(kind, flavor)])
    raise ToolError(f"no {kind} tool found: looked for {names} in PATH",
                    hint="install the server's client package (apt-get install mariadb-client "
                    "or mysql-client)")


@functools.lru_cache(maxsize=16)
def binary_version(path: str) -> str:
    """The first line of `<tool> --version` (asked once per path and process)."""
    try:
        out = sh.Command(path)("--version", _err_to_out=True, _timeout=20,
                               _env=environ_without())
    except (sh.ErrorReturnCode, sh.TimeoutException, OSError) as exc:
        raise ToolError(f"{path} --version failed: {exc}") from None
    return str(out).strip().splitlines()[0] if str(out).strip() else "unknown"


def dump_flavor_args(binary: Binary) -> list[str]:
    """Options whose spelling differs between MariaDB's and MySQL's dump tools."""
    if binary.is_mariadb:
        return []
    # MySQL's mysqldump: keep GTID statements out of a file meant for another server.
    return ["--set-gtid-purged=OFF"]


class ClientDefaults:
    """One database's `[client]` option text, held in memory only (see the module doc).

    `option` is the argv word that points a child at it; `Process(..., defaults=self)`
    hands the descriptor to the child. Safe to share between threads and between children
    running at once: each child opens `/dev/fd/N` afresh (memfd), or gets its own pipe.
    """

    def __init__(self, text: str, secrets: Sequence[str] = ()) -> None:
        self._text = text.encode("utf-8")
        self._secrets = [s for s in secrets if s]
        self._lock = threading.Lock()
        memfd = _memfd(self._text)
        self._pipes = memfd is None
        # With pipes, `fd` is a reserved number that each spawn points at a fresh pipe.
        self.fd = memfd if memfd is not None else os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)

    @property
    def option(self) -> str:
        return f"--defaults-extra-file=/dev/fd/{self.fd}"

    def child_env(self) -> dict[str, str]:
        return environ_without(self._secrets)

    @contextmanager
    def passed(self) -> Iterator[tuple[int, ...]]:
        """The descriptors to give a child (`pass_fds`) while it is spawned inside."""
        if not self._pipes:
            yield (self.fd,)
            return
        with self._lock:  # one reserved number: one spawn at a time points it at its pipe
            read, write = os.pipe()
            try:
                os.write(write, self._text)  # a few hundred bytes: far below a pipe's buffer
            finally:
                os.close(write)
            try:
                os.dup2(read, self.fd, inheritable=False)
                yield (self.fd,)
            finally:
                os.close(read)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, self.fd, inheritable=False)
                os.close(null)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _memfd(data: bytes) -> int | None:
    """An anonymous 0600 file holding `data`, sealed against change; None where the
    platform has no memfd (then pipes carry the text)."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd: int = create("dumpload-client",
                         os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
    except OSError:
        return None
    try:
        # A memfd starts as 0777; the tools silently ignore a world-writable option file.
        os.fchmod(fd, 0o600)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        with contextlib.suppress(OSError, AttributeError):
            fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_GROW
                        | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_SEAL)
    except OSError:
        os.close(fd)
        return None
    return fd


@contextmanager
def defaults_file(db: DatabaseConfig, binary: Binary) -> Iterator[ClientDefaults]:
    """`db`'s credentials for `binary`'s children, in memory; released on exit.

    Pass `defaults.option` as the first argument (`base_argv`) and `defaults=` to `Process`.
    """
    defaults = ClientDefaults(_defaults_text(db, binary), [db.password or ""])
    try:
        yield defaults
    finally:
        defaults.close()


_SECRETS: set[str] = set()  # passwords of this process's configuration (register_secrets)


def register_secrets(secrets: Sequence[str | None]) -> None:
    """Passwords that no child's environment may carry (see `environ_without`)."""
    _SECRETS.update(s for s in secrets if s)


def environ_without(secrets: Sequence[str] = ()) -> dict[str, str]:
    """This process's environment for a child: less MYSQL_PWD and any variable whose
    value is a password (`secrets` or registered), such as a `password_env` source, so
    that the child's /proc/PID/environ shows none."""
    drop = _SECRETS | {s for s in secrets if s}
    return {k: v for k, v in os.environ.items() if k != "MYSQL_PWD" and v not in drop}


CRED_DIR_PREFIX = "dumpload-cred-"


STALE_AFTER = 3600  # seconds; see sweep_stale_credentials


def sweep_stale_credentials(folders: Sequence[Path] = (), *,
                            min_age: float = STALE_AFTER) -> list[Path]:
    """Remove `dumpload-cred-*` folders of this user that versions before in-memory
    credentials left in the temp dir when killed: each holds a password in plain text.

    An older dumpload running at this moment still needs its folder, and nothing shows
    which process owns one, so only folders untouched for `min_age` seconds and named in
    no live process's command line are removed (an old version's folder lives as long as
    one copy, backup or restore). Returns the folders removed.
    """
    roots = list(folders) or list(dict.fromkeys([Path(tempfile.gettempdir()), Path("/tmp")]))
    candidates = []
    for root in roots:
        with contextlib.suppress(OSError):
            candidates += [f for f in root.glob(CRED_DIR_PREFIX + "*") if _stale(f, min_age)]
    if not candidates:
        return []
    in_use = _command_lines()
    removed = []
    for folder in candidates:
        if str(folder).encode() in in_use:
            continue
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
            removed.append(folder)
            log.warning("removed %s: a credentials folder left by an older dumpload", folder)
    return removed


def _stale(folder: Path, min_age: float) -> bool:
    try:
        st = folder.lstat()
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():
            return False
        newest = max([st.st_mtime, *(c.lstat().st_mtime for c in folder.iterdir())])
    except OSError:
        return False
    return time.time() - newest >= min_age


def _command_lines() -> bytes:
    """Every live process's command line, joined (Linux /proc; empty elsewhere)."""
    out = []
    with contextlib.suppress(OSError):
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError):
                    out.append((entry / "cmdline").read_bytes())
    return b"\n".join(out)


def _defaults_text(db: DatabaseConfig, binary: Binary) -> str:
    lines = ["[client]", f"user={_quote_option(db.user)}"]
    if db.password is not None:
        lines.append(f"password={_quote_option(db.password)}")
    if db.socket:
        lines.append(f"socket={_quote_option(str(db.socket))}")
    else:
        lines += [f"host={db.host}", f"port={db.port}", "protocol=TCP"]
    lines.append("default-character-set=utf8mb4")
    lines += _tls_options(db, binary)
    return "\n".join(lines) + "\n"


def _tls_options(db: DatabaseConfig, binary: Binary) -> list[str]:
    if not db.tls:
        return []
    out = [f"{k.replace('_', '-')}={_quote_option(str(v))}"
           for k in ("ssl_ca", "ssl_cert", "ssl_key") if (v := getattr(db, k))]
    if binary.is_mariadb:
        out.append("ssl")
        if db.ssl_verify_identity or db.ssl_ca:
            out.append("ssl-verify-server-cert")
    else:
        out.append("ssl-mode=VERIFY_IDENTITY" if db.ssl_verify_identity else
                   "ssl-mode=VERIFY_CA" if db.ssl_ca else "ssl-mode=REQUIRED")
    return out


def _quote_option(value: str) -> str:
    # Option files treat quotes, backslashes and '#' specially; a quoted value is literal
    # once backslashes and quotes inside are escaped.
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def base_argv(binary: Binary, defaults: ClientDefaults) -> list[str]:
    """argv prefix for a tool; the defaults file must come first for the tool to read it."""
    return [binary.path, defaults.option]


def binlog_position_args(binary: Binary) -> list[str]:
    """Options that write the snapshot's binlog coordinates as comments in the dump."""
    if binary.is_mariadb:
        return ["--master-data=2", "--gtid"]
    match = re.match(r"(\d+)\.(\d+)\.(\d+)", binary.short_version)
    version = tuple(int(x) for x in match.groups()) if match else (0, 0, 0)
    return ["--source-data=2" if version >= (8, 0, 26) else "--master-data=2"]


def dump_names(database: str, *tables: str) -> list[str]:
    """The dump tool's trailing argv words: `--`, then the database and table names, which
    the tool then never reads as options, whatever they spell."""
    return ["--", database, *tables]


_SECRET_ARG = re.compile(r"^(--password|-p|--ssl-key)(=?).+", re.IGNORECASE)


def redact_argv(argv: Sequence[str], secrets: Sequence[str] = ()) -> list[str]:
    """argv with anything that looks like a secret masked, for logs and messages."""
    out = []
    for arg in argv:
        arg = _SECRET_ARG.sub(r"\1\2********", arg)
        for secret in secrets:
            if secret:
                arg = arg.replace(secret, "********")
        out.append(arg)
    return out


def _tail(stderr: bytes | str) -> str:
    """The end of a tool's stderr, with any row value or statement it echoes elided."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    # Elide first: the client echoes a whole failing statement (up to a dump's ~1 MB
    # INSERT), and a cut tail would no longer show where that echo starts.
    return elide_message(text.strip())[-STDERR_KEEP:]


def widen_pipe(fd: int, size: int = 1 << 20) -> None:
    """Ask for a pipe buffer of `size` bytes (Linux; default 64 KiB): a relay then moves
    1 MiB per system call instead of 64 KiB. Where refused, the pipe keeps its size."""
    with contextlib.suppress(OSError, AttributeError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, size)


class Process:
    """A streaming child process whose stderr is collected for the error message.

    Use `stdout`/`stdin` as byte pipes; call `check()` after the stream ends. stderr
    goes to a temporary file so a chatty tool can never block on a full pipe.
    """

    def __init__(self, argv: Sequence[str], *, what: str, stdin: int | IO[bytes] | None = None,
                 stdout: int | IO[bytes] | None = subprocess.PIPE,
                 defaults: ClientDefaults | None = None) -> None:
        self.what = what
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        log.info("spawn %s: %s", what, " ".join(redact_argv(argv)))
        with defaults.passed() if defaults else contextlib.nullcontext(()) as fds:
            self.popen = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout,
                                          stderr=self._stderr, start_new_session=False,
                                          pass_fds=fds,
                                          env=defaults.child_env() if defaults else None)

    @property
    def stdout(self) -> IO[bytes]:
        assert self.popen.stdout is not None
        return self.popen.stdout

    @property
    def stdin(self) -> IO[bytes]:
        assert self.popen.stdin is not None
        return self.popen.stdin

    @property
    def pid(self) -> int:
        return self.popen.pid

    def stderr_text(self) -> str:
        self._stderr.seek(0)
        return _tail(self._stderr.read())

    def wait(self, timeout: float | None = None) -> int:
        return self.popen.wait(timeout)

    def check(self, timeout: float | None = None) -> None:
        """Wait for exit; raise `ToolError` with the tool's stderr unless it exited 0."""
        code = self.popen.wait(timeout)
        if code != 0:
            err = self.stderr_text()
            reason = f"killed by signal {-code}" if code < 0 else f"exit {code}"
            raise ToolError(f"{self.what} failed ({reason}): {err or 'no message'}",
                            stderr=err, returncode=code)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def close(self) -> None:
        self.kill()
        for pipe in (self.popen.stdin, self.popen.stdout):
            if pipe:
                with contextlib.suppress(OSError):  # broken pipe: the tool already went away
                    pipe.close()
        self._stderr.close()

    def __enter__(self) -> Process:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---------------------------------------------------------------- wire compression
# Which protocol compression a native client uses against a server is decided here, and
# only here, from literal version strings (and the server's handshake flags when known):
#   - MariaDB clients and servers speak zlib only (`--compress`);
#   - MySQL 8.0.18+ clients and servers also speak zstd (`--compression-algorithms=zstd
#     --zstd-compression-level=N`); their zlib is `--compression-algorithms=zlib`;
#   - older MySQL clients and servers speak zlib (`--compress`).
# PyMySQL has no protocol compression at all: its sessions (catalog queries, checksums,
# control statements: no rows) always go uncompressed.
CLIENT_COMPRESS = 1 << 5           # handshake flag: the server accepts zlib
CLIENT_ZSTD = 1 << 26              # handshake flag: the server accepts zstd (MySQL 8.0.18+)
ZSTD_SINCE = (8, 0, 18)
WIRE_ZSTD_LEVEL = 3                # ~300 MB/s per core: faster than any link worth compressing


@dataclass(frozen=True)
class WireCompression:
    """What one client uses on the wire to one server: the options and why."""

    algorithm: str | None          # "zstd", "zlib", or None (uncompressed)
    args: tuple[str, ...]
    reason: str

    def __str__(self) -> str:
        return f"{self.algorithm or 'uncompressed'} ({self.reason})"


def _version_numbers(text: str) -> tuple[int, ...]:
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(x) for x in match.groups()) if match else (0, 0, 0)


def client_algorithms(version_line: str) -> tuple[str, ...]:
    """What a client binary can compress with, from its `--version` line (pure).

    `mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, ...` → ("zlib",);
    `mysql  Ver 8.0.36 for Linux ...` → ("zstd", "zlib"); `mysql  Ver 14.14 Distrib 5.7.44`
    → ("zlib",).
    """
    if "mariadb" in version_line.lower():
        return ("zlib",)
    distrib = re.search(r"Distrib (\d+\.\d+\.\d+)", version_line)
    numbers = _version_numbers(distrib.group(1) if distrib else version_line)
    return ("zstd", "zlib") if numbers >= ZSTD_SINCE else ("zlib",)


def server_algorithms(version: str, capabilities: int | None = None) -> tuple[str, ...]:
    """What a server accepts, from `SELECT VERSION()` and, when known, its handshake flags
    (a MySQL server whose `protocol_compression_algorithms` leaves one out does not offer
    it; a server built without zlib offers nothing) (pure)."""
    if "mariadb" in version.lower():
        known: tuple[str, ...] = ("zlib",)
    else:
        known = ("zstd", "zlib") if _version_numbers(version) >= ZSTD_SINCE else ("zlib",)
    if capabilities is None:
        return known
    flags = {"zstd": CLIENT_ZSTD, "zlib": CLIENT_COMPRESS}
    return tuple(a for a in known if capabilities & flags[a])


def choose_compression(mode: str, local: bool, client_version: str, server_version: str,
                       capabilities: int | None = None, *,
                       key: str = "compress") -> WireCompression:
    """The compression a client (its `--version` line) uses to a server (pure).

    `auto` compresses unless the server is local (loopback or socket), `on` always, `off`
    never. The best algorithm both sides know is used: zstd, else zlib (the fallback for
    every MariaDB side and older MySQL). When they share none, `auto` goes uncompressed
    (the reason is logged) and `on` is refused with a `ConfigError` naming `key`, raised
    by the caller before any client runs or anything is written.
    """
    if mode == "off":
        return WireCompression(None, (), f"{key} is off")
    if mode == "auto" and local:
        return WireCompression(None, (), "auto: the server is on loopback or a socket")
    client = client_algorithms(client_version)
    server = server_algorithms(server_version, capabilities)
    shared = [a for a in ("zstd", "zlib") if a in client and a in server]
    if not shared:
        why = (f"the client accepts {'/'.join(client)} and the server ({server_version}) "
               f"{'/'.join(server) or 'no compression'}")
        if mode == "on":
            raise ConfigError(f"{key} is 'on' but no compression is possible: {why}",
                              hint=f"set {key} to \"auto\" or \"off\", or enable zlib/zstd "
                              "in the server's protocol_compression_algorithms")
        return WireCompression(None, (), f"auto: {why}")
    algorithm = shared[0]
    fallback = "" if algorithm == "zstd" or "zstd" not in client else \
        "; zstd needs MySQL 8.0.18+ on both sides"
    new_style = "zstd" in client  # MySQL 8.0.18+ deprecates --compress
    if algorithm == "zstd":
        args: tuple[str, ...] = ("--compression-algorithms=zstd",
                                 f"--zstd-compression-level={WIRE_ZSTD_LEVEL}")
    elif new_style:
        args = ("--compression-algorithms=zlib",)
    else:
        args = ("--compress",)
    return WireCompression(algorithm, args, f"{key} is {mode}{fallback}")


def is_local(host: str, socket_path: str | None) -> bool:
    """A socket, `localhost`, or a host name/address that resolves only to loopback."""
    if socket_path or host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        pass
    try:
        infos = socketlib.getaddrinfo(host, None)
    except OSError:
        return False  # unresolvable here: the client will say so; assume remote
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


_CHOSEN: set[tuple[str, str, str]] = set()


def wire_args(db: DatabaseConfig, binary: Binary, server: ServerInfo) -> tuple[str, ...]:
    """The compression options for `binary` talking to `db`'s server (see `wire_compression`)."""
    return wire_compression(db, binary, server.version_string, server.capabilities).args


def wire_compression(db: DatabaseConfig, binary: Binary, server_version: str,
                     capabilities: int | None = None) -> WireCompression:
    """`choose_compression` for one environment, one client binary and its server; the
    choice is logged once per process."""
    local = db.compress == "auto" and is_local(db.host, db.socket)
    choice = choose_compression(db.compress, local, binary.version, server_version,
                                capabilities, key=f"databases.{db.name}.compress")
    seen = (db.name, binary.path, server_version)
    if seen not in _CHOSEN:
        _CHOSEN.add(seen)
        log.info("wire compression for %s with %s: %s", db.name, binary.name, choice)
    return choice
