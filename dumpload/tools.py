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

Short commands run through `sh`. Byte streams (dumps, table copies) run through
`subprocess.Popen`: relaying 500 MB through `sh` output callbacks took 9.6 s against
0.8 s for a plain pipe read on this machine, and the data path must not pay that.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import os
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import sh

from dumpload.config import DatabaseConfig
from dumpload.errors import ToolError

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
        """This process's environment less any variable holding the password (a
        `password_env` source) and MYSQL_PWD: a child's /proc/PID/environ shows none."""
        return {k: v for k, v in os.environ.items()
                if k != "MYSQL_PWD" and not any(s in v for s in self._secrets)}

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
        fd = create("dumpload-client", os.MFD_CLOEXEC | getattr(os, "MFD_ALLOW_SEALING", 0))
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


CRED_DIR_PREFIX = "dumpload-cred-"


def sweep_stale_credentials(folders: Sequence[Path] = ()) -> list[Path]:
    """Remove `dumpload-cred-*` folders of this user that versions before in-memory
    credentials left in the temp dir when killed: each holds a password in plain text.
    Returns the folders removed."""
    roots = list(folders) or list(dict.fromkeys([Path(tempfile.gettempdir()), Path("/tmp")]))
    removed = []
    for root in roots:
        with contextlib.suppress(OSError):
            for folder in root.glob(CRED_DIR_PREFIX + "*"):
                with contextlib.suppress(OSError):
                    if folder.is_dir() and not folder.is_symlink() \
                            and folder.lstat().st_uid == os.getuid():
                        shutil.rmtree(folder)
                        removed.append(folder)
    for folder in removed:
        log.warning("removed %s: a credentials folder left by an older dumpload", folder)
    return removed


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
