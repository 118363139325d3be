"""`backup create|list|verify|prune|restore`: thin commands over `dumpload.backup`."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import click
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dumpload.backup import (
    BackupInfo,
    create_backup,
    list_backups,
    plan_restore,
    prune_backups,
    resolve_backup,
    resolve_source,
    restore_backup,
    verify_backup,
)
from dumpload.backup.inprogress import settle_interrupted
from dumpload.catalog import human_bytes
from dumpload.cli import cli
from dumpload.cli.app import App, DumpLoadGroup, pass_app, read_only_yes_option, yes_option
from dumpload.config import match_tables
from dumpload.db import session


@cli.group(cls=DumpLoadGroup)
def backup() -> None:
    """Create, list, verify, prune and restore compressed backups (exit 7 on failure)."""


def _env_option(required: bool = True, help_: str = "Environment.") -> Callable[[Any], Any]:
    return click.option("--env", "env_name", required=required, metavar="NAME", help=help_)


def _tables_option(fn: Any) -> Any:
    return click.option("--tables", "tables", multiple=True, metavar="GLOB",
                        help="Tables to include (repeatable; shell-style globs). "
                        "Default: all of them.")(fn)


def _json_option(fn: Any) -> Any:
    return click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")(fn)


@contextmanager
def _progress(app: App, what: str) -> Iterator[Callable[[int], None]]:
    """A bytes counter on stderr; a no-op callback when stderr is not a terminal."""
    console = app.err_console
    if not console.is_terminal:
        yield lambda n: None
        return
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                  TimeElapsedColumn(), console=console, transient=True) as bar:
        task = bar.add_task(what, total=None)
        yield lambda n: bar.update(task, completed=n)


@backup.command("create")
@_env_option(help_="Environment to back up.")
@_tables_option
@click.option("--label", metavar="LABEL", help="Suffix for the file name (letters, digits, .-).")
@click.option("--dry-run", is_flag=True, help="Say what would be backed up; write nothing.")
@_json_option
@read_only_yes_option
@pass_app
def backup_create(app: App, env_name: str, tables: tuple[str, ...], label: str | None,
                  dry_run: bool, as_json: bool) -> None:
    """Write a new compressed backup of an environment (default: the whole database)."""
    run = app.start("backup create", json_mode=as_json)
    env = app.config.env(env_name)
    names = _expand_tables(app, env, tables) if tables else None
    if dry_run:
        what = ", ".join(names) if names else f"the whole database {env.database!r}"
        app.console.print(f"would back up {what} of {env.name} into "
                          f"{app.config.settings.backup_dir / env.name}")
        if as_json:
            app.emit_json({"dry_run": True, "env": env.name, "tables": names})
        return
    with _progress(app, f"backing up {env.name}") as progress:
        info = create_backup(app.config, env, names, label=label, run_id=run.run_id,
                             progress=progress)
    if as_json:
        app.emit_json(info.summary())
        return
    app.console.print(f"backup {info.id}: {len(info.tables)} tables, {len(info.views)} views, "
                      f"{human_bytes(info.size)} → {info.path}")


def _expand_tables(app: App, env: Any, patterns: tuple[str, ...]) -> list[str]:
    """Names and globs expanded against the env's tables and views; one that matches
    nothing is a usage error (exit 2) before anything is written."""
    with session(env, app.config.settings) as s:
        names = [r[0] for r in s.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
            "ORDER BY TABLE_NAME", (env.database,))]
    return match_tables(names, patterns, where=env.name)


@backup.command("list")
@_env_option(required=False, help_="Environment (default: every one with backups).")
@_json_option
@pass_app
def backup_list(app: App, env_name: str | None, as_json: bool) -> None:
    """List backups, newest first, with time, tables, size and status.

    A backup taken while an interrupted restore had left its database half-restored is
    marked `half-restored` (in --json: `half_restored`, naming the restore, the backup it
    was restoring and the tables that held its rows)."""
    app.start("backup list", json_mode=as_json)
    config = app.config
    envs = [config.env(env_name).name] if env_name else list(config.databases)
    settle_interrupted(config.settings.log_dir)  # a killed restore shows up as failed
    backups = [b for e in envs for b in list_backups(config, e)]
    if as_json:
        app.emit_json([b.summary() for b in backups])
        return
    table = Table(title=f"{len(backups)} backups in {config.settings.backup_dir}")
    table.add_column("id", no_wrap=True)
    table.add_column("time", no_wrap=True)
    for name in ("kind", "protects run", "env", "tables", "size", "status"):
        table.add_column(name)
    for b in backups:
        status = "[green]ok[/]" if b.is_good else f"[red]{b.status}[/]"
        if b.half_restored:
            status += " [yellow]half-restored[/]"
        table.add_row(b.id, b.created().strftime("%Y-%m-%d %H:%M:%S"), b.kind,
                      b.protects or "-", b.env, _tables_text(b), human_bytes(b.size), status)
    app.console.print(table)
    for b in backups:
        if (label := b.half_restored) is not None:
            app.console.print(f"{b.id} is half-restored: taken after restore "
                              f"{label.get('restore')} of {label.get('backup')} stopped "
                              f"part-way; its tables holding that restore's rows: "
                              f"{', '.join(label.get('tables') or []) or '-'}; `latest` "
                              "skips it", markup=False)


def _tables_text(b: BackupInfo) -> str:
    names = b.tables + b.views
    if b.manifest.get("whole_database"):
        return f"all ({len(names)})"
    text = ", ".join(names)
    return text if len(text) <= 40 else f"{len(names)} tables"


@backup.command("verify")
@click.argument("backup_id", metavar="ID")
@_env_option(required=False, help_="Environment whose backup ID is (default: search all).")
@_json_option
@pass_app
def backup_verify(app: App, backup_id: str, env_name: str | None, as_json: bool) -> None:
    """Check a backup file without a server: sha256, every frame, the dump footer.

    ID is a backup id, `latest` (with --env), or a path to the .sql.zst file."""
    app.start("backup verify", json_mode=as_json)
    env = app.config.env(env_name) if env_name else None
    info = resolve_backup(app.config, backup_id, env)
    result = verify_backup(info)
    if as_json:
        app.emit_json({"id": info.id, "ok": True, "path": str(info.path),
                       "frames": result.frames, "compressed_bytes": result.compressed_bytes,
                       "uncompressed_bytes": result.uncompressed_bytes,
                       "seconds": result.seconds})
        return
    app.console.print(f"backup {info.id} is intact: {result.frames} frames, "
                      f"{human_bytes(result.uncompressed_bytes)} of SQL, sha256 matches")


@backup.command("prune")
@_env_option(help_="Environment whose backups to prune.")
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@yes_option
@_json_option
@pass_app
def backup_prune(app: App, env_name: str, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Delete backups older than backup_retention_days or beyond max_backups newest good ones
    of their kind (full, pre-change, pre-restore, tables).

    Never deleted: the newest verified full backup, the newest good one of each kind, the
    rollback point of the most recent run and of every run newer than the newest full
    backup; keep_daily/keep_weekly/keep_monthly keep full backups per period too.
    Failed/unverified ones never count as kept."""
    app.start("backup prune", json_mode=as_json)
    env = app.config.env(env_name)
    plan = prune_backups(app.config, env, dry_run=True)
    if not dry_run and plan.deleted:
        app.confirm(f"delete {len(plan.deleted)} backups of {env.name}?", yes)
        plan = prune_backups(app.config, env, dry_run=False)
    if as_json:
        app.emit_json({"dry_run": dry_run, "deleted": [b.id for b in plan.deleted],
                       "kept": [b.id for b in plan.kept], "reasons": plan.reasons})
        return
    verb = "would delete" if dry_run else "deleted"
    for b in plan.deleted:
        app.console.print(f"{verb} {b.id} ({b.kind}, {b.status}, {b.created():%Y-%m-%d %H:%M})"
                          f": {plan.reasons.get(b.id, '')}")
    for b in plan.kept:
        app.console.print(f"keep {b.id} ({b.kind}): {plan.reasons.get(b.id, '')}")
    app.console.print(f"{verb} {len(plan.deleted)} backups, kept {len(plan.kept)}")


@backup.command("restore")
@click.argument("backup_id", metavar="ID")
@_env_option(help_="Environment to restore into (may differ from the backup's own).")
@_tables_option
@click.option("--no-backup", is_flag=True,
              help="Do not back up the tables about to be overwritten first.")
@click.option("--dry-run", is_flag=True, help="Verify and say what would be restored; "
              "write nothing.")
@yes_option
@_json_option
@pass_app
def backup_restore(app: App, backup_id: str, env_name: str, tables: tuple[str, ...],
                   no_backup: bool, dry_run: bool, yes: bool, as_json: bool) -> None:
    """Restore all or some tables of a backup (verified first; counts checked after).

    ID is a backup id, a path, or `latest`: the newest good backup of the env that is not
    labelled half-restored (one taken while an interrupted restore had left the database
    part old, part restored); the ones it passes over are named. Name such a backup
    explicitly to restore it anyway."""
    run = app.start("backup restore", json_mode=as_json)
    env = app.config.env(env_name)
    info, skipped = resolve_source(app.config, backup_id, env)
    for b in skipped:
        label = b.half_restored or {}
        app.err_console.print(f"latest: passing over {b.id}: labelled half-restored (taken "
                              f"after restore {label.get('restore')} of {label.get('backup')} "
                              "stopped part-way)", markup=False)
    verify_backup(info, decompress=dry_run)  # a real restore decompresses as it loads
    plan = plan_restore(app.config, info, env, tables or None)
    names = plan.tables + plan.views
    app.console.print(f"backup {info.id} ({info.env}) → {env.describe()}: "
                      f"{len(plan.tables)} tables, {len(plan.views)} views"
                      + (f"; overwrites {len(plan.overwrite)} existing" if plan.overwrite else ""))
    if dry_run:
        app.console.print("would restore: " + ", ".join(names))
        if plan.overwrite and not no_backup:
            app.console.print("would first back up: " + ", ".join(plan.overwrite))
        if as_json:
            app.emit_json({"dry_run": True, "id": info.id, "env": env.name,
                           "tables": plan.tables, "views": plan.views,
                           "overwrite": plan.overwrite, "pre_backup": not no_backup})
        return
    app.confirm(f"restore {len(names)} tables into {env.describe()}?", yes)
    app.hold_target(env)
    with _progress(app, f"restoring into {env.name}") as progress:
        result = restore_backup(app.config, info, env, tables or None,
                                pre_backup=not no_backup, run_id=run.run_id,
                                progress=progress, verify=False)
    pre = result.pre_backup.id if result.pre_backup else None
    if as_json:
        app.emit_json({"id": info.id, "env": env.name, "tables": result.tables,
                       "views": result.views, "rows": result.rows, "pre_backup": pre,
                       "seconds": result.seconds})
        return
    app.console.print(f"restored {len(result.tables)} tables, {len(result.views)} views in "
                      f"{result.seconds:.1f} s; row counts match the backup")
    if pre:
        app.console.print(f"previous state saved as backup {pre}")
