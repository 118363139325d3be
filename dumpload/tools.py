"""The one place that finds and runs the servers' own binaries.

Dump tools (`mariadb-dump`/`mysqldump`) and clients (`mariadb`/`mysql`) get their
credentials from a private 0600 `--defaults-extra-file` that is deleted afterwards — never
from argv or the environment, so no `/proc/*/cmdline` ever shows a password. Every argv
is logged; every exit status is checked; stderr is kept for the error message.

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
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING

import sh

from dumpload.config import DatabaseConfig
from dumpload.errors import ConfigError, ToolError

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
        out = sh.Command(path)("--version", _err_to_out=True, _timeout=20)
    except (sh.ErrorReturnCode, sh.TimeoutException, OSError) as exc:
        raise ToolError(f"{path} --version failed: {exc}") from None
    return str(out).strip().splitlines()[0] if str(out).strip() else "unknown"


def dump_flavor_args(binary: Binary) -> list[str]:
    """Options whose spelling differs between MariaDB's and MySQL's dump tools."""
    if binary.is_mariadb:
        return []
    # MySQL's mysqldump: keep GTID statements out of a file meant for another server.
    return ["--set-gtid-purged=OFF"]


@contextmanager
def defaults_file(db: DatabaseConfig, binary: Binary) -> Iterator[Path]:
    """A private `[client]` option file with `db`'s credentials, deleted on exit.

    Pass it as the first argument: `--defaults-extra-file=PATH`.
    """
    folder = tempfile.mkdtemp(prefix="dumpload-cred-")  # 0700 by construction
    path = Path(folder) / "client.cnf"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(_defaults_text(db, binary))
        yield path
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _defaults_text(db: DatabaseConfig, binary: Binary) -> str:
    lines = ["[client]", f"user={_quote_option(db.user)}"]
    if db.password is not None:
        lines.append(f"password={_quote_option(db.password)}")
    if db.socket:
        lines.append(f"socket={db.socket}")
    else:
        lines += [f"host={db.host}", f"port={db.port}", "protocol=TCP"]
    lines.append("default-character-set=utf8mb4")
    lines += _tls_options(db, binary)
    return "\n".join(lines) + "\n"


def _tls_options(db: DatabaseConfig, binary: Binary) -> list[str]:
    if not db.tls:
        return []
    out = [f"{k.replace('_', '-')}={v}" for k in ("ssl_ca", "ssl_cert", "ssl_key")
           if (v := getattr(db, k))]
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


def base_argv(binary: Binary, defaults: Path) -> list[str]:
    """argv prefix for a tool; the defaults file must come first for the tool to read it."""
    return [binary.path, f"--defaults-extra-file={defaults}"]


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


def run(argv: Sequence[str], *, stdin: bytes | str | None = None, timeout: float | None = None,
        what: str = "") -> str:
    """Run a short command to completion and return its stdout; raise `ToolError` on failure."""
    log.info("run: %s", " ".join(redact_argv(argv)))
    try:
        out = sh.Command(argv[0])(*argv[1:], _in=stdin, _timeout=timeout, _tty_out=False)
    except sh.ErrorReturnCode as exc:
        raise ToolError(f"{what or Path(argv[0]).name} failed (exit {exc.exit_code}): "
                        f"{_tail(exc.stderr)}", stderr=_tail(exc.stderr),
                        returncode=exc.exit_code) from None
    except sh.TimeoutException:
        raise ToolError(f"{what or Path(argv[0]).name} timed out after {timeout} s") from None
    return str(out)


def _tail(stderr: bytes | str) -> str:
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    return text.strip()[-STDERR_KEEP:]


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
                 stdout: int | IO[bytes] | None = subprocess.PIPE) -> None:
        self.what = what
        self.argv = list(argv)
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in close()
        log.info("spawn %s: %s", what, " ".join(redact_argv(argv)))
        self.popen = subprocess.Popen(self.argv, stdin=stdin, stdout=stdout,
                                      stderr=self._stderr, start_new_session=False)

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
