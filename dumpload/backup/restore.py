"""`restore_backup`: put all or some tables of a backup into an env, from its zstd frames.

Order: verify the whole file (a damaged backup is refused before anything is written),
back up the current state of the tables about to be overwritten (label `pre-restore`),
then restore. Each base table goes to its own client process fed the header frame, the
table's frames and the footer frame — `settings.threads` of them at a time, so tables load
in parallel and nothing else is decompressed. A big table whose rows were cut into several
frames (see `frames.DataSplitter`) loads over several clients: DDL first, rows in parallel,
then ENABLE KEYS/UNLOCK/triggers (see `_phases`). Views (placeholders, then final
definitions) and routines follow in one client. Finally each restored table's row count
must equal the manifest's. Touches: the target env's server, the backup folder, histories.
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import zstandard

from dumpload import tools
from dumpload.backup.create import create_backup
from dumpload.backup.files import BackupInfo, Frame, find_backup, load_info
from dumpload.backup.frames import TABLE_KINDS
from dumpload.backup.verify import verify_backup
from dumpload.catalog import fk_groups, foreign_key_edges
from dumpload.config import Config, DatabaseConfig, match_tables
from dumpload.db import session, usable_threads
from dumpload.errors import BackupError, DumpLoadError, ToolError
from dumpload.logs import record_backup, record_metrics
from dumpload.sqltext import quote

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


def restore_backup(config: Config, backup_id_or_path: str | Path | BackupInfo,
                   env: DatabaseConfig, tables: Sequence[str] | None = None, *,
                   pre_backup: bool = True, run_id: str | None = None,
                   progress: ProgressFn | None = None, verify: bool = True) -> RestoreResult:
    """Restore all (None) or the named/globbed tables of a backup into `env`.

    Raises `BackupError` (exit 7) for a damaged backup (before writing anything), a failed
    client, or row counts that differ from the manifest. `verify=False` skips the check
    for a caller that has just run `verify_backup` itself.
    """
    t0 = time.monotonic()
    info = resolve_backup(config, backup_id_or_path, env)
    if verify:
        verify_backup(info)
    plan = plan_restore(config, info, env, tables)
    pre = None
    if pre_backup and plan.overwrite:
        pre = create_backup(config, env, plan.overwrite, label="pre-restore", run_id=run_id)
        log.info("pre-restore backup of %s: %s", env.name, pre.id)
    event = {"event": "restore", "id": info.id, "env": env.name, "run_id": run_id,
             "tables": plan.tables + plan.views, "pre_backup": pre.id if pre else None}
    try:
        _restore(config, plan, progress)
        rows = check_rows(config, plan)
    except DumpLoadError as exc:
        record_backup(config.settings.log_dir, {**event, "status": "failed",
                                                "error": " ".join(exc.message.split())})
        if pre is not None and not exc.hint:
            exc.hint = f"undo with: dumpload backup restore {pre.id} --env {env.name}"
        raise
    seconds = round(time.monotonic() - t0, 3)
    record_backup(config.settings.log_dir, {**event, "status": "ok", "seconds": seconds})
    record_metrics(config.settings.log_dir, {"step": "restore", "env": env.name, "id": info.id,
                                             "run_id": run_id, "seconds": seconds,
                                             "tables": len(plan.tables)})
    return RestoreResult(info, env.name, plan.tables, plan.views, rows, pre, seconds)


def _restore(config: Config, plan: RestorePlan, progress: ProgressFn | None) -> None:
    frames = plan.backup.frames
    header = [f for f in frames if f.kind == "header"]
    footer = [f for f in frames if f.kind == "footer"]
    by_table: dict[str, list[Frame]] = {}
    for f in frames:
        if f.kind in TABLE_KINDS and f.name in plan.tables:
            by_table.setdefault(f.name, []).append(f)
    client = tools.find_binary("client", plan.flavor)
    fed = _Counter(progress)
    threads = config.settings.threads
    # Tables linked by foreign keys go through one client, in dump order: dropping a
    # parent while another client loads its child ends in a lock wait.
    with session(plan.env, config.settings) as s:
        groups = fk_groups(plan.tables, foreign_key_edges(s))
        threads = usable_threads(threads, s)
    first, rows, last = _phases(groups, by_table)
    tail = _tail_frames(frames, plan)
    with tools.defaults_file(plan.env, client) as defaults:
        for jobs in (first, rows, last):
            jobs = [(what, header + fr + footer) for what, fr in jobs]
            errors = _run_parallel(client, defaults, plan, jobs, fed, threads)
            if errors:
                raise BackupError(f"restore of {plan.backup.id} into {plan.env.name!r} failed: "
                                  + "; ".join(errors))
        if tail:
            _feed_client(client, defaults, plan, header + tail + footer, fed, "views/routines")


Jobs = list[tuple[str, list[Frame]]]


def _phases(groups: list[list[str]],
            by_table: dict[str, list[Frame]]) -> tuple[Jobs, Jobs, Jobs]:
    """Client jobs in three rounds: (DDL of split groups, rows, ends of split tables).

    A group whose tables have at most one row frame each loads whole in one client, in the
    rows round. In a group holding a table cut into several row frames, one client first
    runs every table's DDL (and the whole of its small tables), in dump order; then that
    table's row frames are each a job of their own, run `threads` at a time (the dump header
    turns foreign and unique key checks off; their "table_lock" frames, whose WRITE lock
    would serialise them, are skipped); last one client per group runs ENABLE KEYS,
    UNLOCK TABLES and the triggers, so triggers never see restored rows.
    """
    first: Jobs = []
    rows: Jobs = []
    last: Jobs = []
    pieces: list[Frame] = []
    for group in groups:
        split = [t for t in group if _is_split(by_table[t])]
        if not split:
            rows.append((", ".join(group), [f for t in group for f in by_table[t]]))
            continue
        first.append((", ".join(group), [f for t in group for f in by_table[t]
                                         if t not in split or f.kind == "table"]))
        pieces += [f for t in split for f in by_table[t] if f.kind == "table_data"]
        last.append((", ".join(split), [f for t in split for f in by_table[t]
                                        if f.kind == "table_end"]))
    rows += [(f"{f.name} (rows at {f.offset})", [f]) for f in pieces]
    # Biggest first: the pool then packs the small jobs into the gaps.
    rows.sort(key=lambda job: -sum(f.raw_length for f in job[1]))
    return first, rows, [(w, fr) for w, fr in last if fr]


def _is_split(frames: list[Frame]) -> bool:
    """Rows in several frames, and a table_end frame to hold the triggers apart from them."""
    kinds = [f.kind for f in frames]
    return kinds.count("table_data") > 1 and "table_end" in kinds


def _tail_frames(frames: list[Frame], plan: RestorePlan) -> list[Frame]:
    """View placeholders, routines, final view definitions — in dump order."""
    views = set(plan.views)
    return [f for f in frames if (f.kind in ("view", "view_final") and f.name in views)
            or (f.kind in ("routines", "events") and plan.routines)]


def _run_parallel(client: tools.Binary, defaults: Path, plan: RestorePlan,
                  jobs: Jobs, fed: _Counter, threads: int) -> list[str]:
    errors: list[str] = []
    with ThreadPoolExecutor(max(1, threads), thread_name_prefix="restore") as pool:
        futures = {pool.submit(_feed_client, client, defaults, plan, fr, fed, f"table {t}"): t
                   for t, fr in jobs}
        for fut, table in futures.items():
            try:
                fut.result()
            except DumpLoadError as exc:
                errors.append(f"table {table}: {exc.message}")
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


def client_argv(client: tools.Binary, defaults: Path, database: str) -> list[str]:
    # --binary-mode: take the dump's bytes as they are (no '\r\n' rewriting, no client
    # commands but DELIMITER); the dump comes from a server, not from a person.
    return tools.base_argv(client, defaults) + [
        "--binary-mode", "--batch", "--max-allowed-packet=1G", f"--database={database}"]


def _feed_client(client: tools.Binary, defaults: Path, plan: RestorePlan, frames: list[Frame],
                 fed: _Counter, what: str) -> None:
    argv = client_argv(client, defaults, plan.env.database)
    with tools.Process(argv, what=f"{client.name} restoring {what}", stdin=subprocess.PIPE,
                       stdout=subprocess.DEVNULL) as proc, plan.backup.path.open("rb") as fh:
        try:
            for frame in frames:
                _copy_frame(fh, frame, proc.stdin, fed)
            proc.stdin.close()
        except BrokenPipeError:
            pass  # the client stopped reading: its exit status below says why
        try:
            proc.check()
        except ToolError as exc:
            raise BackupError(f"{exc.message}", hint=exc.hint) from None


def _copy_frame(fh: IO[bytes], frame: Frame, out: IO[bytes], fed: _Counter) -> None:
    fh.seek(frame.offset)
    dobj = zstandard.ZstdDecompressor().decompressobj()
    left = frame.length
    while left:
        data = fh.read(min(READ_SIZE, left))
        if not data:
            raise BackupError(f"backup file ends inside frame of {frame.name or frame.kind}")
        left -= len(data)
        raw = dobj.decompress(data)
        out.write(raw)
        fed.add(len(raw))


def check_rows(config: Config, plan: RestorePlan) -> dict[str, int]:
    """Row counts of the restored tables; `BackupError` if any differs from the manifest."""
    expected = plan.backup.rows
    got: dict[str, int] = {}
    with session(plan.env, config.settings) as s:
        for t in plan.tables:
            got[t] = int(s.scalar(f"SELECT COUNT(*) FROM {quote(t)}"))
    wrong = [f"{t!r}: {got[t]} rows, backup has {expected[t]}" for t in plan.tables
             if t in expected and got[t] != expected[t]]
    if wrong:
        raise BackupError(f"restore of {plan.backup.id} into {plan.env.name!r}: row counts "
                          f"differ: {'; '.join(wrong)}",
                          hint="rows written to the source during the backup can explain a "
                          "small difference; otherwise restore again")
    return got
