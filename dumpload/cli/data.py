"""Data commands: `data`, `verify`, `export`, `import` (thin: parse, confirm, call, print)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from dumpload.catalog import human_bytes
from dumpload.cli import cli
from dumpload.cli.app import (
    App,
    copy_mode_options,
    from_to_options,
    pass_app,
    read_only_yes_option,
    resolve_envs,
    table_patterns,
    tables_option,
    yes_option,
)
from dumpload.config import MAX_THREADS, Config, DatabaseConfig, match_tables
from dumpload.data.engine import CopyReport
from dumpload.data.plan import TablePlan
from dumpload.data.verify import VerifyReport
from dumpload.db import session, usable_threads
from dumpload.errors import EXIT_DIFFERENCES, DumpLoadError, UsageError, VerifyError
from dumpload.progress import make_progress

log = logging.getLogger(__name__)


class Differences(DumpLoadError):
    """`verify` found differences (exit 1): nothing was written, so not exit 8."""

    exit_code = EXIT_DIFFERENCES


def threads_option(fn: Any) -> Any:
    return click.option("--threads", type=click.IntRange(1, MAX_THREADS), metavar="N",
                        help="Parallel workers (default: settings.threads).")(fn)


def _data_tables(app: App, env: DatabaseConfig, tables: tuple[str, ...],
                 required: bool = True) -> list[str]:
    """Base tables of `env` matching --tables (else replication.data_tables) minus excludes;
    a pattern matching none of them, or no pattern at all, is a usage error (exit 2)."""
    from dumpload.data.tables import base_tables

    include, exclude = table_patterns(app, tables, app.config.replication.data_tables)
    if not include and not required:
        return []  # `verify` without data tables still re-checks the structure
    if not include:
        raise UsageError("no data tables: replication.data_tables is empty",
                         hint="list them in replication.data_tables, or pass --tables GLOB")
    with session(env, app.config.settings) as s:
        names = base_tables(s)
    return match_tables(names, include, exclude, where=env.name)


SHOWN = 40   # tables listed one per row; past that the biggest, then a summary (--json: all)


def _rest(items: list[Any], shown: list[Any], what: Callable[[Any], str]) -> str:
    """'N more table(s): a x, b y' for the items not shown (the terminal stays readable
    and fast with thousands of tables)."""
    left = [i for i in items if i not in shown]
    counts: dict[str, int] = {}
    for item in left:
        counts[what(item)] = counts.get(what(item), 0) + 1
    return f"... {len(left)} more table(s): " + ", ".join(f"{n} {k}" for k, n in counts.items())


def _plan_table(plans: list[TablePlan]) -> Table:
    table = Table("table", "rows (est.)", "size (est.)", "strategy", "because", "how",
                  title="data copy plan")
    shown = sorted(plans, key=lambda p: -p.bytes_estimate)[:SHOWN] if len(plans) > SHOWN \
        else plans
    for p in shown:
        table.add_row(p.table, f"{p.rows_estimate:,}", human_bytes(p.bytes_estimate), p.mode,
                      p.reason, p.strategy)
    if len(shown) < len(plans):
        table.add_row(_rest(plans, shown, lambda p: p.mode), "", "", "", "", "")
    return table


@cli.command()
@from_to_options
@tables_option
@click.option("--dry-run", is_flag=True, help="Show per table what would be copied and how; "
              "write nothing.")
@threads_option
@click.option("--no-backup", is_flag=True, help="Do not back up the target tables first.")
@copy_mode_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@yes_option
@pass_app
def data(app: App, from_env: str | None, to_env: str | None, tables: tuple[str, ...],
         dry_run: bool, threads: int | None, no_backup: bool, full: bool, lock_target: bool,
         as_json: bool, yes: bool) -> None:
    """Replace the target's rows of the data tables with the source's.

    Each table by its strategy (`--dry-run` shows it and why): small ones in place in one
    transaction, large ones by their differing key ranges (delta), the rest streamed in
    parallel key-range chunks into shadow tables swapped in atomically; then verifies
    counts and checksums (exit 8 on a mismatch).
    The target tables must already have the source's structure (`dumpload structure`).
    """
    from dumpload.data import copy_tables, plan_copy
    from dumpload.data.plan import preflight

    run = app.start("data", json_mode=as_json)
    config = app.config
    source, target = resolve_envs(app, from_env, to_env)
    with session(source, config.settings) as s, session(target, config.settings) as d:
        threads = usable_threads(threads or config.settings.threads, s, d)
    names = _data_tables(app, source, tables)
    if not dry_run:
        app.hold_target(target)
    out = app.console
    out.print(f"{source.describe()} → {target.describe()}", markup=False)
    if not names:
        out.print("no data tables selected: nothing to do")
        if as_json:
            app.emit_json({"dry_run": dry_run, "tables": []})
        return
    plans = plan_copy(config, source, target, names, threads=threads, full=full,
                      lock_target=lock_target)
    out.print(_plan_table(plans))
    if dry_run:
        out.print(f"dry run: {len(plans)} table(s) would be replaced with {threads} thread(s); "
                  "nothing written")
        if as_json:
            app.emit_json({"dry_run": True, "tables": [p.to_dict() for p in plans]})
        return
    app.confirm(f"Replace the rows of {len(plans)} table(s) on {target.describe()}?", yes)
    preflight(config, target)
    backup_id = None if no_backup else _backup(app, config, target, names, run.run_id)
    with make_progress(app.err_console) as progress:
        report = copy_tables(config, source, target, names, threads=threads,
                             progress=progress, plans=plans, verify=True,
                             lock_target=lock_target, full=full)
    _print_copy(app, report, backup_id)
    if as_json:
        app.emit_json({"dry_run": False, "backup": backup_id, **report.to_dict()})
    if report.verify is not None and not report.verify.ok:
        bad = report.verify.failed
        raise VerifyError(f"verification failed after the copy for {len(bad)} table(s): "
                          + ", ".join(_why(c) for c in bad),
                          hint="was the source written to during the copy? run "
                          "`dumpload verify` to re-check")


def _backup(app: App, config: Config, target: DatabaseConfig, names: list[str],
            run_id: str) -> str | None:
    from dumpload.backup import create_backup
    from dumpload.data.tables import base_tables

    with session(target, config.settings) as s:
        existing = set(base_tables(s))
    to_save = [t for t in names if t in existing]
    if not to_save:
        return None
    info = create_backup(config, target, to_save, label="pre-data", run_id=run_id,
                         kind="pre-change")
    app.console.print(f"backup of {len(to_save)} target table(s): {info.id}", markup=False)
    log.info("pre-data backup %s (%s)", info.id, info.path)
    return info.id


def _print_copy(app: App, report: CopyReport, backup_id: str | None) -> None:
    table = Table("table", "rows", "bytes", "on the wire", "chunks", "load s", "index s",
                  "verify s", "status",
                  title=f"copied in {report.seconds:.1f} s with {report.threads} thread(s)")
    tables = report.tables
    if len(tables) > SHOWN:  # failures first, then the slowest
        tables = sorted(tables, key=lambda r: (r.status == "swapped", -r.seconds))[:SHOWN]
    for r in tables:
        ph = r.phases
        # what the target received, and how much smaller than what was read
        wire = (f"{human_bytes(r.target_wire_bytes)} ({r.compression_ratio:.1f}x)"
                if r.compression_ratio else "-")
        table.add_row(r.table, f"{r.rows:,}", human_bytes(r.bytes), wire, str(r.chunks),
                      f"{ph.get('extract_load', 0):.1f}", f"{ph.get('index_build', 0):.1f}",
                      f"{ph.get('verify', 0):.1f}", r.status)
    if len(tables) < len(report.tables):
        table.add_row(_rest(report.tables, tables, lambda r: r.status), *[""] * 7)
    app.console.print(table)
    if report.verify is not None:
        ok = len(report.verify.tables) - len(report.verify.failed)
        app.console.print(f"verified: {ok} of {len(report.verify.tables)} table(s) identical")


def _why(check: Any) -> str:
    if check.error:
        return f"{check.table} ({check.error})"
    ranges = "; ".join(m.range for m in check.mismatches[:3])
    return (f"{check.table} (rows {check.source_rows} vs {check.target_rows}"
            + (f"; ranges {ranges}" if ranges else "") + ")")


@cli.command()
@from_to_options
@tables_option
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@pass_app
def verify(app: App, from_env: str | None, to_env: str | None, tables: tuple[str, ...],
           threads: int | None, as_json: bool) -> None:
    """Compare row counts and checksums of the data tables (and the structure) between
    source and target. Writes nothing. Exit 0 identical, 1 differences."""
    from dumpload.data import verify_tables

    app.start("verify", json_mode=as_json)
    config = app.config
    source, target = resolve_envs(app, from_env, to_env)
    names = _data_tables(app, source, tables, required=False)
    report = verify_tables(config, source, target, names, threads=threads)
    structure, objects = _structure_differences(app, source, target, tables)
    if as_json:
        # `ok` after the data report's own: structure differences make it false too.
        app.emit_json({"from": source.name, "to": target.name, **report.to_dict(),
                       "ok": report.ok and not structure,
                       "structure_differences": structure, "objects": objects})
    _print_verify(app, report, structure)
    app.console.print("objects (source/target): " + ", ".join(
        f"{kind} {n['source']}/{n['target']}" + ("" if n["source"] == n["target"] else " ✗")
        for kind, n in objects.items()), markup=False)
    if not report.ok or structure:
        what = [_why(c) for c in report.failed] + (
            [f"{len(structure)} structure difference(s)"] if structure else [])
        raise Differences(f"differences found: {', '.join(what)}",
                          hint="`dumpload sync` (or `structure` + `data`) brings the target "
                          "in line")


def _structure_differences(app: App, source: DatabaseConfig, target: DatabaseConfig,
                           tables: tuple[str, ...]) -> tuple[list[str], dict[str, dict[str, int]]]:
    """The structure differences, and how many tables, views, triggers, procedures,
    functions and events each side holds (a missing routine is a difference too)."""
    from dumpload.schema import diff, load_schema

    include, exclude = table_patterns(app, tables, app.config.replication.structure_tables)
    with session(source, app.config.settings) as src, session(target, app.config.settings) as dst:
        src_schema, dst_schema = (load_schema(src, include, exclude),
                                  load_schema(dst, include, exclude))
    plan = diff(src_schema, dst_schema, allow_unsafe=True)
    counts = dst_schema.object_counts()
    objects = {kind: {"source": n, "target": counts[kind]}
               for kind, n in src_schema.object_counts().items()}
    return [str(d) for d in plan.differences], objects


def _print_verify(app: App, report: VerifyReport, structure: list[str]) -> None:
    table = Table("table", "source rows", "target rows", "checksum", "", title="verify")
    for c in report.tables:
        mark = "[green]✓[/]" if c.ok else "[red]✗[/]"
        detail = c.error or (f"{len(c.mismatches)} range(s) differ: "
                             + "; ".join(m.range for m in c.mismatches[:3])
                             if c.mismatches else c.source_checksum)
        table.add_row(c.table, f"{c.source_rows:,}", f"{c.target_rows:,}", detail, mark)
    app.console.print(table)
    for line in structure[:20]:
        app.console.print(f"structure: {line}", markup=False)


@cli.command("export")
@click.option("--env", "env_name", required=True, metavar="NAME", help="Environment to read.")
@click.option("--out", "out_dir", required=True, metavar="DIR", type=click.Path(),
              help="Folder to write (created; must be empty or new).")
@tables_option
@threads_option
@click.option("--json", "as_json", is_flag=True, help="Print the manifest as one JSON document.")
@read_only_yes_option
@pass_app
def export_cmd(app: App, env_name: str, out_dir: str, tables: tuple[str, ...],
               threads: int | None, as_json: bool) -> None:
    """Write one compressed data file per table (<table>.tsv.zst), schema.sql and
    manifest.json (counts, checksums, sizes), all from one consistent snapshot."""
    from dumpload.data.export import export_tables

    app.start("export", json_mode=as_json)
    env = app.config.env(env_name)
    names = _data_tables(app, env, tables)
    with make_progress(app.err_console) as progress:
        manifest = export_tables(app.config, env, Path(out_dir), names, threads=threads,
                                 progress=progress, objects=table_patterns(
                                     app, tables, app.config.replication.structure_tables))
    if as_json:
        app.emit_json(manifest)
    total = sum(t["rows"] for t in manifest["tables"])
    size = sum(t["compressed_bytes"] for t in manifest["tables"])
    app.console.print(f"exported {len(manifest['tables'])} table(s), {total:,} rows, "
                      f"{human_bytes(size)} to {out_dir}", markup=False)


@cli.command("import")
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.option("--env", "env_name", required=True, metavar="NAME", help="Environment to load.")
@tables_option
@threads_option
@click.option("--dry-run", is_flag=True, help="Check the export and show what would be "
              "loaded; write nothing.")
@click.option("--no-backup", is_flag=True, help="Do not back up the tables first.")
@yes_option
@pass_app
def import_cmd(app: App, folder: str, env_name: str, tables: tuple[str, ...],
               threads: int | None, dry_run: bool, no_backup: bool, yes: bool) -> None:
    """Load an export folder into a database: checked against its manifest, each table
    replaced atomically (shadow + rename), counts and checksums verified after."""
    from dumpload.data.export import check_export, import_tables

    run = app.start("import")
    env = app.config.env(env_name)
    manifest = check_export(Path(folder), tables)
    names = [t["name"] for t in manifest["tables"]]
    out = app.console
    for t in manifest["tables"]:
        out.print(f"{t['name']}: {t['rows']:,} rows, {human_bytes(t['bytes'])}", markup=False)
    if dry_run:
        out.print(f"dry run: {len(names)} table(s) would be loaded into {env.describe()}; "
                  "nothing written", markup=False)
        return
    app.confirm(f"Replace the rows of {len(names)} table(s) on {env.describe()}?", yes)
    app.hold_target(env)
    if not no_backup:
        _backup(app, app.config, env, names, run.run_id)
    with make_progress(app.err_console) as progress:
        report = import_tables(app.config, env, Path(folder), names, threads=threads,
                               progress=progress)
    _print_copy(app, report, None)
    if report.verify is not None and not report.verify.ok:
        raise VerifyError("after the import, table(s) differ from the manifest: "
                          + ", ".join(_why(c) for c in report.verify.failed))
