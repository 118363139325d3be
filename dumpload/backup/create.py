"""`create_backup`: stream the server's dump tool through zstd into a complete backup or none.

The dump runs in a consistent snapshot (`--single-transaction`); its output is cut into one
zstd frame per section (see `frames`) and written to a hidden, `flock`ed partial file in
the backup folder. Only when the tool exited 0, the `-- Dump completed` footer arrived,
every requested table was seen and the file is fsynced does it get its final name and a
manifest. Any failure — tool error, kill, full disk, lost connection, interrupt — removes
the partial and leaves a `failed` line in `backup_history.log`. A backup taken while an
interrupted restore has left its database half-restored carries the manifest label
`half_restored` (`halfrestore.label_for`). Touches: the env's server (read only),
`<backup_dir>/<env>/`, `log_dir` histories.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import queue
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Generator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from dumpload import __version__, swap, tools
from dumpload.backup import halfrestore, meta
from dumpload.backup.files import (
    KIND_FULL,
    KIND_TABLES,
    KINDS,
    MANIFEST_FORMAT,
    PARTIAL_SUFFIX,
    STATUS_FAILED,
    STATUS_OK,
    BackupInfo,
    Frame,
    backup_id,
    clean_label,
    env_dir,
    fsync_dir,
    load_info,
    paths_for,
    write_json_atomic,
)
from dumpload.backup.frames import COMPLETED, DataSplitter, FrameWriter, SectionSplitter
from dumpload.backup.inprogress import settle_interrupted
from dumpload.config import Config, DatabaseConfig
from dumpload.db import Session, connect, session
from dumpload.errors import BackupError, DumpLoadError, ToolError
from dumpload.logs import BACKUP_HISTORY, now_stamp, record_backup, record_metrics
from dumpload.private import make_dirs
from dumpload.sqltext import quote

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
READ_AHEAD = 64           # blocks of READ_SIZE the dump may run ahead of the writer
_F_SETPIPE_SZ = 1031  # Linux: a bigger pipe means fewer, larger reads from the dump tool

ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class Inventory:
    """What the backup will hold: base tables and views, in dump order."""

    tables: list[str]
    views: list[str]
    whole_database: bool


@dataclass
class _Attempt:
    """One backup attempt's files and bookkeeping, for success and for cleanup."""

    id: str
    final: Path
    manifest: Path
    partial: Path
    lock_fh: IO[bytes]
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    t0: float = field(default_factory=time.monotonic)


def create_backup(config: Config, env: DatabaseConfig, tables: Sequence[str] | None = None, *,
                  label: str | None = None, run_id: str | None = None,
                  kind: str | None = None, progress: ProgressFn | None = None) -> BackupInfo:
    """Back up `tables` of `env` (None: the whole database incl. views, triggers, routines).

    `kind` (manifest `kind`, see `files.KINDS`) defaults to `full` for the whole database
    and `tables` otherwise; callers backing up before a change pass `pre-change` or
    `pre-restore` with their `run_id`. An empty `tables` list is refused (`BackupError`):
    callers with nothing to back up skip the call. Returns the new backup; raises
    `BackupError` (exit 7) on any failure, leaving no final file and a `failed` line in
    `backup_history.log`.
    """
    if tables is not None and len(tables) == 0:
        raise BackupError(f"nothing to back up in {env.name!r}: the table list is empty",
                          hint="pass tables=None for the whole database")
    folder = env_dir(config, env.name)
    try:
        make_dirs(folder)
    except OSError as exc:
        raise BackupError(f"cannot create backup folder {folder}: {exc.strerror}") from None
    remove_abandoned(config, env)
    settle_interrupted(config.settings.log_dir)
    attempt = _reserve(folder, env.database, clean_label(label))
    kind = kind or (KIND_FULL if tables is None else KIND_TABLES)
    if kind not in KINDS:
        raise BackupError(f"unknown backup kind {kind!r}", hint=f"one of {', '.join(KINDS)}")
    event: dict[str, Any] = {"event": "create", "id": attempt.id, "env": env.name,
                             "database": env.database, "label": clean_label(label),
                             "kind": kind, "run_id": run_id}
    guard = _Guardian(config, attempt, event, [env.password or ""])
    try:
        info = _run(config, env, tables, attempt, event, progress)
        guard.release()
    except BaseException as exc:
        _fail(config, attempt, event, exc)
        guard.release()
        if isinstance(exc, DumpLoadError) and not isinstance(exc, BackupError):
            raise BackupError(f"backup of {env.name!r} failed: {exc.message}",
                              hint=exc.hint) from exc
        if isinstance(exc, OSError):
            raise BackupError(f"backup of {env.name!r} failed writing {attempt.partial}: "
                              f"{exc.strerror or exc}",
                              hint="check free space and limits on the backup folder") from exc
        raise
    finally:
        attempt.lock_fh.close()
    return info


# Runs in a tiny separate process: if dumpload dies (SIGKILL, OOM) mid-backup, its end of
# the pipe closes without "done", and this removes the partial and logs the failure.
_GUARDIAN = """
import json, os, sys, datetime
partial, final, manifest, history, event = sys.argv[1:6]
if sys.stdin.buffer.read() != b"done":
    doc = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
           **json.loads(event), "status": "failed",
           "error": "the dumpload process died before the backup finished"}
    fd = os.open(history, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(doc) + chr(10))
    for path in (partial, final):
        if path == partial or not os.path.exists(manifest):
            try: os.unlink(path)
            except OSError: pass
"""


class _Guardian:
    """Cleans up after a backup whose dumpload process is killed outright."""

    def __init__(self, config: Config, attempt: _Attempt, event: dict[str, Any],
                 secrets: Sequence[str] = ()) -> None:
        history = config.settings.log_dir / BACKUP_HISTORY
        self.proc: subprocess.Popen[bytes] | None = None
        with contextlib.suppress(OSError):
            make_dirs(history.parent)
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _GUARDIAN, str(attempt.partial),
                 str(attempt.final), str(attempt.manifest), str(history), json.dumps(event)],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                # a Ctrl-C to dumpload's group must not reach it; nor a password its env
                start_new_session=True, env=tools.environ_without(secrets))

    def release(self) -> None:
        """We finished (well or not) and logged it ourselves: the guardian has nothing to do."""
        if self.proc is None:
            return
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            assert self.proc.stdin is not None
            self.proc.stdin.write(b"done")
            self.proc.stdin.close()
            self.proc.wait(5)
        self.proc = None


def _reserve(folder: Path, database: str, label: str | None) -> _Attempt:
    """Claim a new id: the partial file is created exclusively and locked for our lifetime.

    Two backups in the same second get `_2`, `_3`... at the end of the id.
    """
    stamp = now_stamp()
    for n in range(1, 1000):
        id_ = backup_id(database, stamp, label, n)
        final, manifest, partial = paths_for(folder, id_)
        if final.exists() or manifest.exists():
            continue
        try:
            fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            continue
        fh = os.fdopen(fd, "wb")
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        return _Attempt(id_, final, manifest, partial, fh)
    raise BackupError(f"cannot find a free backup name in {folder} for {stamp}")


def remove_abandoned(config: Config, env: DatabaseConfig) -> list[str]:
    """Delete partial files no live process holds (their writer was killed); log each."""
    folder = env_dir(config, env.name)
    removed = []
    for partial in sorted(folder.glob(f".*{PARTIAL_SUFFIX}")):
        try:
            with partial.open("rb") as fh:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                partial.unlink()
        except BlockingIOError:
            continue  # another backup is writing it right now
        except OSError:
            continue
        id_ = partial.name[1: -len(PARTIAL_SUFFIX)]
        removed.append(id_)
        log.warning("removed abandoned partial backup %s", partial)
        record_backup(config.settings.log_dir, {
            "event": "create", "status": STATUS_FAILED, "id": id_, "env": env.name,
            "database": env.database,
            "error": "abandoned: the process writing it stopped before finishing"})
    return removed


def _run(config: Config, env: DatabaseConfig, tables: Sequence[str] | None, attempt: _Attempt,
         event: dict[str, Any], progress: ProgressFn | None) -> BackupInfo:
    settings = config.settings
    with session(env, settings) as s:
        server = s.server
        inventory = _inventory(s, tables)
        halfrestore.resolve_on(s, settings.log_dir, swap.target_key(env))
        binlog = bool(int(s.scalar("SELECT @@GLOBAL.log_bin") or 0))
        objects = meta.count_objects(s) if inventory.whole_database else {}
    event["tables"] = inventory.tables + inventory.views
    binary = tools.find_binary("dump", server.flavor)
    wire = tools.wire_args(env, binary, server)
    counter = connect(env, settings)
    try:
        counter.execute("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        counter.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
        with ThreadPoolExecutor(1, thread_name_prefix="backup-count") as pool:
            with tools.defaults_file(env, binary) as defaults:
                argv = dump_argv(binary, defaults, env, inventory, wire, binlog)
                counts = pool.submit(_count_rows, counter, inventory.tables)
                frames, raw, sha, capture = _stream(argv, defaults, binary, env, attempt,
                                                    settings.compression_level, progress)
            rows = _result(counts, env)
    finally:
        counter.close()
    _check_sections(env, inventory, frames)
    event["binlog"] = meta.parse_binlog(capture.text()) if binlog else None
    if inventory.whole_database:
        event["objects"] = meta.check_objects(env.name, capture, objects)
    os.replace(attempt.partial, attempt.final)
    fsync_dir(attempt.final.parent)
    event["half_restored"] = halfrestore.label_for(settings.log_dir, swap.target_key(env),
                                                   inventory.tables)
    if event["half_restored"]:
        log.warning("backup %s is labelled half-restored: %s hold rows of the interrupted "
                    "restore %s", attempt.id, ", ".join(event["half_restored"]["tables"])
                    or "none of its tables", event["half_restored"]["restore"])
    manifest = _manifest(env, attempt, inventory, rows, frames, raw, sha, server, binary, event)
    write_json_atomic(attempt.manifest, manifest)
    seconds = round(time.monotonic() - attempt.t0, 3)
    record_backup(settings.log_dir, {**event, "status": STATUS_OK, "path": str(attempt.final),
                                     "compressed_bytes": manifest["compressed_bytes"],
                                     "uncompressed_bytes": raw, "seconds": seconds})
    record_metrics(settings.log_dir, {"step": "backup", "env": env.name, "id": attempt.id,
                                      "run_id": event.get("run_id"), "seconds": seconds,
                                      "uncompressed_bytes": raw,
                                      "compressed_bytes": manifest["compressed_bytes"]})
    log.info("backup %s of %s written: %s (%d tables, %d bytes)", attempt.id, env.name,
             attempt.final, len(inventory.tables), manifest["compressed_bytes"])
    return load_info(attempt.final, env.name)


def _inventory(s: Session, tables: Sequence[str] | None) -> Inventory:
    rows = s.query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                   "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME", (s.env.database,))
    kinds = {r[0]: r[1] for r in rows}
    names = list(kinds) if tables is None else list(dict.fromkeys(tables))
    missing = [n for n in names if n not in kinds]
    if missing:
        raise BackupError(f"cannot back up {s.env.name!r}: no table {', '.join(map(repr, missing))}"
                          f" in database {s.env.database!r}",
                          hint="`dumpload tables --env NAME` lists the tables")
    return Inventory([n for n in names if kinds[n] != "VIEW"],
                     [n for n in names if kinds[n] == "VIEW"], tables is None)


def dump_argv(binary: tools.Binary, defaults: tools.ClientDefaults, env: DatabaseConfig,
              inventory: Inventory, wire: Sequence[str] = (),
              binlog: bool = False) -> list[str]:
    """The dump tool's argv: consistent snapshot, exact bytes, section comments kept; the
    database and table names after `--`, so none is ever read as an option; `wire`:
    protocol compression options (`tools.wire_args`).

    A whole-database backup carries routines and events. With `binlog` (the server writes
    binary logs) the snapshot's binlog coordinates (and MariaDB's GTID position) are written
    as comments (`--master-data=2`), which `meta.parse_binlog` reads into the manifest; with
    `--single-transaction` MariaDB takes them from the snapshot without a global lock.
    """
    whole = inventory.whole_database
    argv = tools.base_argv(binary, defaults) + [*wire,
        "--single-transaction", "--quick", "--hex-blob", "--triggers", "--no-tablespaces",
        "--comments", "--add-drop-table", "--tz-utc", "--max-allowed-packet=1G",
        "--routines" if whole else "--skip-routines", "--events" if whole else "--skip-events",
        *(tools.binlog_position_args(binary) if binlog else []),
        *tools.dump_flavor_args(binary),
    ]
    names = [] if inventory.whole_database else inventory.tables + inventory.views
    return argv + tools.dump_names(env.database, *names)


def _stream(argv: list[str], defaults: tools.ClientDefaults, binary: tools.Binary,
            env: DatabaseConfig, attempt: _Attempt, level: int, progress: ProgressFn | None
            ) -> tuple[list[Frame], int, str, meta.MetaCapture]:
    """Run the dump into the partial file; return (frames, uncompressed bytes, sha256, the
    non-table sections' text)."""
    fh = attempt.lock_fh
    writer = FrameWriter(fh, level)
    rows = DataSplitter(writer.write, writer.section)
    capture = meta.MetaCapture(rows.write, rows.section)
    splitter = SectionSplitter(capture.write, capture.section)
    with tools.Process(argv, what=f"{binary.name} of {env.name}", defaults=defaults) as proc:
        with contextlib.suppress(OSError):
            fcntl.fcntl(proc.stdout.fileno(), _F_SETPIPE_SZ, READ_SIZE)
        with contextlib.closing(_read_ahead(proc)) as blocks:
            for chunk in blocks:
                splitter.feed(chunk)
                if progress:
                    progress(writer.raw_total)
        splitter.close()
        rows.close()
        frames = writer.finish()
        try:
            proc.check()
        except ToolError as exc:
            raise BackupError(f"backup of {env.name!r} failed: {exc.message}",
                              hint="see the tool's message above; nothing was kept") from None
    fh.flush()
    os.fsync(fh.fileno())
    if not splitter.footer_seen or COMPLETED not in splitter.tail:
        raise BackupError(f"backup of {env.name!r} failed: the dump ended without its "
                          "'-- Dump completed' footer (truncated output)")
    return frames, writer.raw_total, writer.out.sha256.hexdigest(), capture


def _read_ahead(proc: tools.Process) -> Generator[bytes, None, None]:
    """The dump's output in blocks of up to READ_SIZE, read by a thread of its own.

    Ending a zstd frame waits for the compressor threads; reading in the same thread
    would stop the dump tool meanwhile (its pipe full). The reader keeps up to
    READ_AHEAD blocks queued instead, so the dump runs on while a frame ends. A buffered
    read of 1 MiB waits for a full block: the dump tool writes in small pieces,
    and per-piece Python overhead would otherwise cost a core-second per GB. When the
    consumer stops early (an error; close the generator), the reader stops at its next
    block and the caller's `Process` kills the tool.
    """
    blocks: queue.Queue[bytes | BaseException | None] = queue.Queue(READ_AHEAD)
    stop = threading.Event()

    def hand(item: bytes | BaseException | None) -> None:
        while not stop.is_set():
            with contextlib.suppress(queue.Full):
                blocks.put(item, timeout=0.2)
                return

    def reader() -> None:
        try:
            while not stop.is_set() and (chunk := proc.stdout.read(READ_SIZE)):
                hand(chunk)
            hand(None)
        except BaseException as exc:  # handed to the consumer, re-raised there
            hand(exc)

    thread = threading.Thread(target=reader, name="dumpload-dump-reader", daemon=True)
    thread.start()
    try:
        while (item := blocks.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()  # a consumer that stopped early: the reader gives up its next block


def _count_rows(s: Session, tables: Sequence[str]) -> dict[str, int]:
    out = {}
    for t in tables:
        out[t] = int(s.scalar(f"SELECT COUNT(*) FROM {quote(t)}"))
    s.execute("COMMIT")
    return out


def _result(future: Future[dict[str, int]], env: DatabaseConfig) -> dict[str, int]:
    try:
        return future.result()
    except DumpLoadError:
        raise
    except Exception as exc:  # a lost connection while counting: the backup is not trusted
        raise BackupError(f"counting rows in {env.name!r} failed: {exc}") from exc


def _check_sections(env: DatabaseConfig, inventory: Inventory, frames: list[Frame]) -> None:
    seen = {f.name for f in frames if f.kind in ("table", "view")}
    lost = [t for t in inventory.tables + inventory.views if t not in seen]
    if lost:
        raise BackupError(f"backup of {env.name!r} failed: the dump has no section for "
                          f"{', '.join(map(repr, lost))}")
    if not frames or frames[-1].kind != "footer":
        raise BackupError(f"backup of {env.name!r} failed: the dump has no footer")


def _manifest(env: DatabaseConfig, attempt: _Attempt, inventory: Inventory,
              rows: dict[str, int], frames: list[Frame], raw: int, sha: str, server: Any,
              binary: tools.Binary, event: dict[str, Any]) -> dict[str, Any]:
    return {
        "format": MANIFEST_FORMAT, "id": attempt.id, "file": attempt.final.name,
        "status": STATUS_OK, "env": env.name, "database": env.database,
        "host": env.address, "label": event.get("label"), "kind": event["kind"],
        "run_id": event.get("run_id"),
        "started_at": attempt.started.isoformat(timespec="seconds"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": round(time.monotonic() - attempt.t0, 3),
        "whole_database": inventory.whole_database,
        "binlog": event.get("binlog"), "objects": event.get("objects"),
        "half_restored": event.get("half_restored"),
        "tables": inventory.tables, "views": inventory.views, "rows": rows,
        "uncompressed_bytes": raw, "compressed_bytes": attempt.final.stat().st_size,
        "sha256": sha, "compression": "zstd",
        "server": {"flavor": server.flavor, "version": server.version_string},
        "dump_tool": {"name": binary.name, "version": binary.short_version},
        "tool_version": f"dumpload {__version__}",
        "frames": [f.to_json() for f in frames],
    }


def _fail(config: Config, attempt: _Attempt, event: dict[str, Any], exc: BaseException) -> None:
    with contextlib.suppress(OSError):
        attempt.partial.unlink()
    with contextlib.suppress(OSError):
        attempt.final.unlink()  # renamed but no manifest yet: not a backup either
    reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else (
        getattr(exc, "message", None) or str(exc) or type(exc).__name__)
    log.error("backup %s of %s failed: %s", attempt.id, event["env"], reason)
    with contextlib.suppress(OSError):  # a full disk may refuse even this line
        record_backup(config.settings.log_dir, {
            **event, "status": STATUS_FAILED, "error": " ".join(str(reason).split()),
            "seconds": round(time.monotonic() - attempt.t0, 3)})
