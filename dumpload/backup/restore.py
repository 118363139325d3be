"""`restore_backup`: put all or some tables of a backup into an env — as a swap, never an
overwrite.

Order: verify the file (manifest, frame index, sha256: a damaged backup is refused before
anything is written; each frame's own zstd checksum is checked as it is loaded),
back up the current state of the tables about to be replaced (kind `pre-restore`), then:
1. **work tables** — each table's `CREATE TABLE` is read from its frames and created under
   its work name (`swap.work_name`), without foreign keys and with secondary indexes
   deferred (`worktables`);
2. **rows** — the table's row frames are loaded `settings.threads` at a time, biggest
   first, their `INSERT`s renamed to the work table on the way: sent as statements over
   sessions, or, where the protocol is compressed (a remote target), piped through the
   command-line client, which can compress it. Each job is one transaction, so a deadlock
   or lock-wait timeout is retried from scratch; no `LOCK TABLES` anywhere in the load;
3. **check** — deferred indexes built, each work table's row count must equal the manifest;
4. **swap** — per foreign-key group, `swap_group` puts the work tables in place with the
   backup's FKs and triggers (DEFINER=CURRENT_USER);
5. views (`CREATE OR REPLACE`), and for a whole-database restore routines and events.
Until step 4 the live tables are not touched: a kill, a lost server or any error leaves
them exactly as they were (the work tables left behind are dropped by the next restore).
From step 4 on, the in-progress marker records each group before its swap starts and after
it ends, so a restore stopped between two groups is recorded as `partial` and the database
as half-restored (`halfrestore`) until a completed restore of those tables.
The backup files are only read: `zstd -dc FILE | mariadb DB` restores them by hand.
Touches: the target env's server, the backup folder (the pre-restore backup), histories.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO

import pymysql
import zstandard

from dumpload import tools
from dumpload.backup import halfrestore, worktables
from dumpload.backup.create import create_backup
from dumpload.backup.files import (
    KIND_PRE_RESTORE,
    BackupInfo,
    Frame,
    find_backup,
    list_backups,
    load_info,
)
from dumpload.backup.frames import TABLE_KINDS
from dumpload.backup.inprogress import Marker, in_progress, settle_interrupted
from dumpload.backup.verify import verify_backup
from dumpload.catalog import fk_groups
from dumpload.config import Config, DatabaseConfig, match_tables
from dumpload.db import Session, session, with_retry
from dumpload.errors import BackupError, DumpLoadError, ToolError
from dumpload.logs import now_stamp, record_backup, record_metrics
from dumpload.schema.model import Trigger
from dumpload.sqltext import quote
from dumpload.swap import (
    Replacement,
    foreign_key_from_sql,
    settle_leftovers,
    swap_group,
    target_key,
    work_name,
)

log = logging.getLogger(__name__)

READ_SIZE = 1 << 20
ProgressFn = Callable[[int], None]


@dataclass(frozen=True)
class RestorePlan:
    """What a restore will do; `backup restore --dry-run` prints it."""

    backup: BackupInfo
    env: DatabaseConfig
    tables: list[str]        # base tables, in the order they will be started
    views: list[str]
    routines: bool           # the backup's routines section is replayed too
    overwrite: list[str]     # of tables + views, those that exist in the env now
    flavor: str = "mariadb"  # the env's server, whose client we use


@dataclass(frozen=True)
class RestoreResult:
    backup: BackupInfo
    env: str
    tables: list[str]
    views: list[str]
    rows: dict[str, int]
    pre_backup: BackupInfo | None
    seconds: float


def resolve_backup(config: Config, backup: str | Path | BackupInfo,
                   env: DatabaseConfig | None) -> BackupInfo:
    """A backup by id/`latest`/path: the env's own folder first, then every env's."""
    if isinstance(backup, BackupInfo):
        return backup
    as_file = isinstance(backup, Path) or str(backup).endswith((".sql.zst", ".json"))
    if as_file and Path(backup).exists():
        return load_info(Path(backup))
    if env is not None:
        with contextlib.suppress(BackupError):
            return find_backup(config, env, str(backup))
    return find_backup(config, None, str(backup))


def resolve_source(config: Config, backup: str | Path | BackupInfo, env: DatabaseConfig
                   ) -> tuple[BackupInfo, list[BackupInfo]]:
    """The backup a restore into `env` reads, and the backups `latest` passed over.

    `latest` is the newest good backup of the env that is not labelled half-restored (its
    tables do not come from one moment: restoring it would bring an interrupted restore's
    mixture back); an id or path is taken as given, label or not."""
    if backup != "latest":
        return resolve_backup(config, backup, env), []
    good = [b for b in list_backups(config, env) if b.is_good]
    if not good:
        return resolve_backup(config, backup, env), []
    clean = [b for b in good if not b.half_restored]
    skipped = good[:good.index(clean[0])] if clean else good
    if not clean:
        raise BackupError(f"every good backup of {env.name!r} is labelled half-restored "
                          f"(newest: {good[0].id}); `latest` picks none of them",
                          hint="`dumpload backup list` shows the labels; name the backup to "
                          "restore explicitly")
    return clean[0], skipped


def plan_restore(config: Config, backup: str | Path | BackupInfo, env: DatabaseConfig,
                 tables: Sequence[str] | None = None) -> RestorePlan:
    """Which tables/views of the backup a restore would write into `env` (reads the env)."""
    info = resolve_backup(config, backup, env)
    tables_, views = select_objects(info, tables)
    with session(env, config.settings) as s:
        existing = {r[0] for r in s.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s",
            (env.database,))}
        flavor = s.server.flavor
    sizes: dict[str | None, int] = {}
    for f in info.frames:
        if f.kind in TABLE_KINDS:
            sizes[f.name] = sizes.get(f.name, 0) + f.raw_length
    ordered = sorted(tables_, key=lambda t: -sizes.get(t, 0))  # biggest first: better packing
    return RestorePlan(info, env, ordered, views,
                       routines=tables is None and bool(info.manifest.get("whole_database")),
                       overwrite=[n for n in tables_ + views if n in existing], flavor=flavor)


def select_objects(info: BackupInfo, patterns: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(base tables, views) of the backup matching the globs; a glob that matches nothing
    is a `UsageError` (exit 2) listing what the backup holds."""
    if patterns is None:
        return info.tables, info.views
    names = info.tables + info.views
    chosen = set(match_tables(names, patterns, where=f"backup {info.id}"))
    return [t for t in info.tables if t in chosen], [v for v in info.views if v in chosen]


@dataclass
class WorkTable:
    """One table of a backup being loaded into its work table."""

    table: str
    work: str
    definition: worktables.WorkDefinition
    triggers: list[Trigger]
    jobs: list[list[Frame]] = field(default_factory=list)  # client jobs: frames of its rows
    inside: bool = True              # the jobs' frames hold only INSERTs (row frames)
    rows: int = 0                    # counted in the work table

    def replacement(self) -> Replacement:
        return Replacement(self.table, self.work,
                           tuple(foreign_key_from_sql(c) for c in self.definition.fk_clauses),
                           tuple(self.triggers))


def restore_backup(config: Config, backup_id_or_path: str | Path | BackupInfo,
                   env: DatabaseConfig, tables: Sequence[str] | None = None, *,
                   pre_backup: bool = True, run_id: str | None = None,
                   progress: ProgressFn | None = None, verify: bool = True) -> RestoreResult:
    """Restore all (None) or the named/globbed tables of a backup into `env`.

    Raises `BackupError` (exit 7) for a damaged backup (before writing anything), a failed
    client, or row counts that differ from the manifest — the live tables untouched.
    `verify=False` skips the file check for a caller that has just run `verify_backup`.
    """
    t0 = time.monotonic()
    log_dir = config.settings.log_dir
    settle_interrupted(log_dir)
    info, skipped = resolve_source(config, backup_id_or_path, env)
    for b in skipped:
        log.warning("latest: passing over %s, labelled half-restored", b.id)
    if verify:
        verify_backup(info, decompress=False)  # the load decompresses (and checks) each frame
    plan = plan_restore(config, info, env, tables)
    restore_id = run_id or f"restore-{now_stamp()}-{os.getpid()}"
    event = {"event": "restore", "id": info.id, "env": env.name, "run_id": run_id,
             "tables": plan.tables + plan.views}
    with in_progress(log_dir, event) as marker:
        done = halfrestore.progress_doc(restore_id, info.id, env.name, env.database,
                                        target_key(env), [])
        marker.doc["progress"] = done
        pre = None
        if pre_backup and plan.overwrite:
            marker.phase("pre-restore backup")
            pre = create_backup(config, env, plan.overwrite, label="pre-restore",
                                run_id=run_id, kind=KIND_PRE_RESTORE)
            log.info("pre-restore backup of %s: %s", env.name, pre.id)
        event["pre_backup"] = marker.doc["pre_backup"] = pre.id if pre else None
        try:
            rows = _restore(config, plan, marker, progress)
        except (DumpLoadError, KeyboardInterrupt) as exc:
            message = exc.message if isinstance(exc, DumpLoadError) else "interrupted"
            where = halfrestore.settle_restore(log_dir, marker.doc)
            record_backup(log_dir, {**event, **where, "status": "failed",
                                    "phase": marker.doc.get("phase"),
                                    "error": " ".join(message.split())})
            if isinstance(exc, DumpLoadError) and "partial" in where:
                exc.hint = (f"the database is half-restored (see the warning above): rerun "
                            f"`dumpload backup restore {info.id} --env {env.name}` to complete"
                            " it" + (f", or restore {pre.id} to undo it" if pre else ""))
            elif isinstance(exc, DumpLoadError) and pre is not None and not exc.hint:
                exc.hint = f"undo with: dumpload backup restore {pre.id} --env {env.name}"
            raise
        seconds = round(time.monotonic() - t0, 3)
        ended = halfrestore.settle_completed(log_dir, done, plan.tables,
                                             info.manifest.get("half_restored"))
        for entry in ended:
            log.info("%s is no longer half-restored by restore %s", env.name,
                     entry.get("restore"))
        record_backup(log_dir, {**event, "status": "ok", "seconds": seconds})
    record_metrics(config.settings.log_dir, {"step": "restore", "env": env.name, "id": info.id,
                                             "run_id": run_id, "seconds": seconds,
                                             "tables": len(plan.tables)})
    return RestoreResult(info, env.name, plan.tables, plan.views, rows, pre, seconds)


def _restore(config: Config, plan: RestorePlan, marker: Marker,
             progress: ProgressFn | None) -> dict[str, int]:
    env, settings = plan.env, config.settings
    marker.phase("load into work tables")
    settle_leftovers(env, settings)
    works = load_work_tables(config, plan.backup, env, plan.tables, plan.flavor, progress)
    groups = swap_groups(works)
    done = marker.doc["progress"]
    done["groups"] = groups
    for group in groups:
        # Written before the swap starts: from here a kill may leave the group swapped
        # (the detached executor finishes what it holds the lock for).
        done["swapping"] = group
        marker.phase("swap")
        try:
            swap_group(env, settings, [works[t].replacement() for t in group])
        except DumpLoadError:
            done["swapping"] = []  # the executor's verdict: this group was not swapped
            raise
        done["swapped"] = done["swapped"] + group
        done["swapping"] = []
        marker.phase("swap")
    marker.phase("views and routines")
    restore_views(config, plan.backup, env, plan.views)
    if plan.routines:
        replay_routines(config, plan.backup, env, plan.flavor)
    return {t: w.rows for t, w in works.items()}


def swap_groups(works: dict[str, WorkTable]) -> list[list[str]]:
    """The tables linked by the backup's foreign keys, each group swapped at once."""
    edges = [(t, p) for t, w in works.items() for p in w.definition.parents]
    return fk_groups(list(works), edges)


# --- work tables -------------------------------------------------------------------------

def load_work_tables(config: Config, backup: BackupInfo, env: DatabaseConfig,
                     tables: Sequence[str], flavor: str,
                     progress: ProgressFn | None = None) -> dict[str, WorkTable]:
    """Create, load, index and count the work tables of `tables` of `backup`.

    Raises `BackupError` on any failure; the live tables are never touched.
    """
    works = {t: _prepare(backup, t) for t in tables}
    settings = config.settings
    client = tools.find_binary("client", flavor)
    with session(env, settings) as s:
        wire = tools.wire_args(env, client, s.server)
        s.execute("SET SESSION foreign_key_checks = 0")
        for w in works.values():
            s.execute(f"DROP TABLE IF EXISTS {quote(w.work)}")
            s.execute(w.definition.create_sql)
    _load_rows(config, backup, env, list(works.values()), client, wire, progress)
    errors = _parallel(settings.threads, [(w.table, partial(_finish, config, env, w))
                                          for w in works.values()])
    if errors:
        raise BackupError(f"restore of {backup.id} into {env.name!r} failed building "
                          f"indexes: " + "; ".join(errors), hint="the live tables are "
                          "unchanged; run the restore again")
    wrong = [f"{t!r}: {w.rows} rows, backup has {backup.rows[t]}" for t, w in works.items()
             if t in backup.rows and w.rows != backup.rows[t]]
    if wrong:
        raise BackupError(f"restore of {backup.id} into {env.name!r}: row counts differ "
                          f"from the manifest: {'; '.join(wrong)}; the live tables are "
                          "unchanged", hint="rows written to the source during the backup "
                          "can explain a small difference; otherwise restore again")
    return works


def _prepare(backup: BackupInfo, table: str) -> WorkTable:
    """A table's work definition, triggers and row jobs, from its frames."""
    frames = [f for f in backup.frames if f.name == table and f.kind in TABLE_KINDS]
    rows = [f for f in frames if f.kind == "table_data"]
    text = b"".join(read_frame(backup.path, f) for f in frames if f.kind != "table_data")
    create = worktables.extract_create(text)
    if create is None:
        raise BackupError(f"backup {backup.id} has no CREATE TABLE for {table!r}",
                          hint="restore it by hand with zstd -dc FILE | mariadb DB")
    work = work_name(table)
    w = WorkTable(table, work, worktables.work_definition(create, work),
                  worktables.parse_triggers(text))
    if rows:
        w.jobs = [[f] for f in rows]
    elif b"\nINSERT INTO `" in text:  # an older backup: rows inside the table's section
        w.jobs, w.inside = [[f for f in frames]], False
    return w


def read_frame(path: Path, frame: Frame) -> bytes:
    with path.open("rb") as fh:
        return b"".join(_frame_chunks(fh, frame))


def _frame_chunks(fh: IO[bytes], frame: Frame) -> Iterator[bytes]:
    fh.seek(frame.offset)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    left = frame.length
    while left:
        data = fh.read(min(READ_SIZE, left))
        if not data:
            raise BackupError(f"backup file ends inside frame of {frame.name or frame.kind}")
        left -= len(data)
        try:
            yield dobj.decompress(data)
        except zstandard.ZstdError as exc:
            raise BackupError(f"backup file is damaged in the frame of "
                              f"{frame.name or frame.kind}: {exc}", hint="the live tables are "
                              "unchanged; restore another backup") from None


def _finish(config: Config, env: DatabaseConfig, w: WorkTable) -> None:
    """Build the deferred indexes (one ALTER: sorted builds) and count the rows."""
    def run() -> None:
        with session(env, config.settings) as s:
            if w.definition.index_clauses:
                s.execute("SET SESSION foreign_key_checks = 0")
                s.execute(f"ALTER TABLE {quote(w.work)} "
                          + ", ".join("ADD " + c for c in w.definition.index_clauses))
            w.rows = int(s.scalar(f"SELECT COUNT(*) FROM {quote(w.work)}"))
    with_retry(run, config.settings, f"indexing {w.work}")


# --- loading rows --------------------------------------------------------------------------

# A job is one transaction (autocommit off, COMMIT at the end): if its client fails, the
# server rolls it back, so a retry starts clean. unique_checks=1: with 0, MariaDB's bulk
# insert into an empty table locks the table for the transaction and the jobs of one
# table would queue behind each other (secondary indexes are deferred anyway).
_JOB_START = b"\nSET autocommit = 0, unique_checks = 1;\n"
_JOB_END = b"\nCOMMIT;\n"
_RETRYABLE = ("ERROR 1213", "ERROR 1205")  # deadlock, lock wait timeout
_RETRYABLE_CODES = (1213, 1205)


def _load_rows(config: Config, backup: BackupInfo, env: DatabaseConfig,
               works: list[WorkTable], client: tools.Binary, wire: Sequence[str],
               progress: ProgressFn | None) -> None:
    frames = backup.frames
    header = [f for f in frames if f.kind == "header"]
    footer = [f for f in frames if f.kind == "footer"]
    jobs = [(w, job) for w in works for job in w.jobs]
    jobs.sort(key=lambda j: -sum(f.raw_length for f in j[1]))  # biggest first: better packing
    fed = _Counter(progress)
    with tools.defaults_file(env, client) as defaults:
        argv = client_argv(client, defaults, env.database, wire)
        # Uncompressed (a local server, or `compress: off`): statements go over sessions.
        direct = not wire
        calls = [(f"table {w.table}", partial(_run_job, config, client, defaults, argv, backup,
                                              header, footer, w, job, fed, env, direct))
                 for w, job in jobs]
        errors = _parallel(config.settings.threads, calls)
    if errors:
        raise BackupError(f"restore of {backup.id} into {env.name!r} failed: "
                          + "; ".join(errors), hint="the live tables are unchanged; fix the "
                          "cause and run the restore again")


def _run_job(config: Config, client: tools.Binary, defaults: tools.ClientDefaults,
             argv: list[str], backup: BackupInfo, header: list[Frame], footer: list[Frame],
             w: WorkTable, job: list[Frame], fed: _Counter, env: DatabaseConfig,
             direct: bool) -> None:
    """One job, retried from scratch after a deadlock or a lock-wait timeout."""
    attempts = max(1, config.settings.retry_attempts)
    for attempt in range(1, attempts + 1):
        try:
            if direct:
                _send_job(config, env, backup, header, w, job, fed)
            else:
                _feed_job(client, defaults, argv, backup, header, footer, w, job, fed)
            return
        except ToolError as exc:
            retryable = any(code in exc.stderr for code in _RETRYABLE)
            detail, failed = exc.stderr, BackupError(exc.message, hint=exc.hint)
        except pymysql.err.MySQLError as exc:
            retryable = bool(exc.args) and exc.args[0] in _RETRYABLE_CODES
            detail = f"{exc.args[-1]} (error {exc.args[0]})" if exc.args else str(exc)
            failed = BackupError(f"loading {w.work} failed: {detail}", hint="the live tables "
                                 "are unchanged; fix the cause and run the restore again")
        if attempt == attempts or not retryable:
            raise failed from None
        log.warning("loading %s: %s; retrying (attempt %d)", w.work, detail, attempt + 1)
        time.sleep(0.5 * attempt)


def _send_job(config: Config, env: DatabaseConfig, backup: BackupInfo, header: list[Frame],
              w: WorkTable, job: list[Frame], fed: _Counter) -> None:
    """One job as statements sent over a session: the same bytes the client would send,
    without a client process re-scanning every byte of them (it cost a quarter of the
    restore's CPU). One transaction: a failure or our death rolls it back."""
    # A row frame holds only INSERTs: the splitter renames them. An older backup's job is
    # the whole table section: the renamer keeps only its rows, renamed.
    renamer = None if w.inside else worktables.InsertRenamer(w.table, w.work, inside=False)
    rows = worktables.StatementSplitter(None if renamer else (w.table, w.work))
    with session(env, config.settings, autocommit=False) as s, \
            backup.path.open("rb") as fh:
        prelude = worktables.StatementSplitter()
        for frame in header:  # the dump's session settings: SET NAMES, time_zone, ...
            for statement in prelude.feed(b"".join(_frame_chunks(fh, frame))):
                s.send(statement)
        for statement in prelude.close() + [_JOB_START.strip()]:
            s.send(statement)
        for frame in job:
            for chunk in _frame_chunks(fh, frame):
                for statement in rows.feed(renamer.feed(chunk) if renamer else chunk):
                    s.send(statement)
                fed.add(len(chunk))
        for statement in rows.feed(renamer.close() if renamer else b"") + rows.close():
            s.send(statement)
        s.conn.commit()


def _feed_job(client: tools.Binary, defaults: tools.ClientDefaults, argv: list[str],
              backup: BackupInfo, header: list[Frame], footer: list[Frame], w: WorkTable,
              job: list[Frame], fed: _Counter) -> None:
    """One job piped through the command-line client: the path of a compressed protocol
    (a session here cannot compress)."""
    renamer = worktables.InsertRenamer(w.table, w.work, inside=w.inside)
    with tools.Process(argv, what=f"{client.name} loading {w.work}", stdin=subprocess.PIPE,
                       stdout=subprocess.DEVNULL, defaults=defaults) as proc, \
            backup.path.open("rb") as fh:
        try:
            for frame in header:
                _write(proc.stdin, fed, b"".join(_frame_chunks(fh, frame)))
            _write(proc.stdin, fed, _JOB_START)
            for frame in job:
                for chunk in _frame_chunks(fh, frame):
                    _write(proc.stdin, fed, renamer.feed(chunk))
            _write(proc.stdin, fed, renamer.close() + _JOB_END)
            for frame in footer:
                _write(proc.stdin, fed, b"".join(_frame_chunks(fh, frame)))
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped reading: its exit status below says why
        proc.check()


def _write(out: IO[bytes], fed: _Counter, data: bytes) -> None:
    if data:
        out.write(data)
        fed.add(len(data))


def _parallel(threads: int, calls: Sequence[tuple[str, Callable[[], None]]]) -> list[str]:
    """Run the calls `threads` at a time; the messages of those that failed."""
    errors: list[str] = []
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="restore") as pool:
        futures = [(what, pool.submit(fn)) for what, fn in calls]
        for what, fut in futures:
            try:
                fut.result()
            except DumpLoadError as exc:
                errors.append(f"{what}: {exc.message}")
    return errors


class _Counter:
    """Bytes fed to clients, across threads, reported to a progress callback."""

    def __init__(self, progress: ProgressFn | None) -> None:
        self.total = 0
        self._lock = threading.Lock()
        self._progress = progress

    def add(self, n: int) -> None:
        with self._lock:
            self.total += n
            if self._progress:
                self._progress(self.total)


def client_argv(client: tools.Binary, defaults: tools.ClientDefaults, database: str,
                wire: Sequence[str] = ()) -> list[str]:
    # --binary-mode: take the dump's bytes as they are (no '\r\n' rewriting, no client
    # commands but DELIMITER); the dump comes from a server, not from a person.
    return [*tools.base_argv(client, defaults), *wire, "--binary-mode", "--batch",
            "--max-allowed-packet=1G", f"--database={database}"]


# --- views, routines, events ---------------------------------------------------------------

def restore_views(config: Config, backup: BackupInfo, env: DatabaseConfig,
                  views: Sequence[str]) -> None:
    """`CREATE OR REPLACE` each view (atomic per view), in an order that satisfies the
    views that read other views."""
    statements: dict[str, str] = {}
    for f in backup.frames:
        if f.kind == "view_final" and f.name is not None and f.name in views:
            stmt = worktables.view_statement(read_frame(backup.path, f))
            if stmt is None:
                raise BackupError(f"backup {backup.id}: cannot read the definition of view "
                                  f"{f.name!r}")
            statements[f.name] = stmt
    with session(env, config.settings) as s:
        _create_in_dependency_order(s, statements)


def _create_in_dependency_order(s: Session, statements: dict[str, str]) -> None:
    left = dict(statements)
    while left:
        failed: dict[str, str] = {}
        last_error = ""
        for name, stmt in left.items():
            try:
                s.execute(stmt)
            except Exception as exc:  # noqa: BLE001 - a view whose view is not there yet
                failed[name], last_error = stmt, str(exc)
        if len(failed) == len(left):
            raise BackupError(f"cannot create view(s) {', '.join(map(repr, failed))}: "
                              f"{last_error}")
        left = failed


def replay_routines(config: Config, backup: BackupInfo, env: DatabaseConfig,
                    flavor: str) -> None:
    """Routines and events of a whole-database backup, DEFINER=CURRENT_USER."""
    frames = backup.frames
    wanted = [f for f in frames if f.kind in ("header", "routines", "events", "footer")]
    text = b"".join(worktables.rewrite_definer(read_frame(backup.path, f))
                    if f.kind in ("routines", "events") else read_frame(backup.path, f)
                    for f in wanted)
    client = tools.find_binary("client", flavor)
    with session(env, config.settings) as s:
        wire = tools.wire_args(env, client, s.server)
    with tools.defaults_file(env, client) as defaults:
        argv = client_argv(client, defaults, env.database, wire)
        with tools.Process(argv, what=f"{client.name} restoring routines and events",
                           stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                           defaults=defaults) as proc:
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(text)
                proc.stdin.close()
            try:
                proc.check()
            except ToolError as exc:
                raise BackupError(exc.message, hint=exc.hint) from None
