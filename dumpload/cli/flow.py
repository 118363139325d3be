"""`sync` (the whole flow, with its report) and `rollback` (undo a run from its backup)."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from dumpload.catalog import human_bytes
from dumpload.cli import cli
from dumpload.cli.app import (
    App,
    from_to_options,
    pass_app,
    resolve_envs,
    tables_option,
    yes_option,
)
from dumpload.cli.structure import confirm_locking
from dumpload.config import MAX_THREADS
from dumpload.progress import make_progress
from dumpload.schema import render_plan_text
from dumpload.sync import (
    SyncPlan,
    SyncReport,
    analyse_sync,
    ensure_safe,
    nothing_to_do,
    plan_rollback,
    rollback_run,
    run_sync,
    sync_options,
)


@cli.command()
@from_to_options
@tables_option
@click.option("--dry-run", is_flag=True, help="Print the plan (SQL, tables to copy, backups) "
              "and write nothing on either server.")
@click.option("--allow-unsafe", is_flag=True, help="Allow destructive structure changes "
              "(drops, narrowing, charset or engine changes).")
@click.option("--no-backup", is_flag=True, help="Skip the pre-change backup (the run then "
              "cannot be rolled back).")
@click.option("--keep-definer", is_flag=True, help="Keep DEFINER clauses of views/triggers "
              "instead of rewriting them to the target account.")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="Parallel copy workers "
              "(default: settings.threads).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@yes_option
@pass_app
def sync(app: App, from_env: str | None, to_env: str | None, tables: tuple[str, ...],
         dry_run: bool, allow_unsafe: bool, no_backup: bool, keep_definer: bool,
         threads: int | None, as_json: bool, yes: bool) -> None:
    """Bring the target in line with the source: analyse, back up, apply the structure
    changes, replace the data of the data tables, verify — then report.

    A failed or interrupted run is resumed by running sync again; `dumpload rollback`
    undoes a run from its pre-change backup.
    """
    run = app.start("sync", json_mode=as_json)
    source, target = resolve_envs(app, from_env, to_env)
    options = sync_options(app.config, tables, allow_unsafe=allow_unsafe, no_backup=no_backup,
                           keep_definer=keep_definer, threads=threads)
    with app.console.status("analysing source and target…"):
        plan = analyse_sync(app.config, source, target, options)
    if plan.is_empty:
        report = nothing_to_do(app.config, plan, run.run_id)
        _finish(app, report, as_json, "nothing to do: the target already matches the source")
        return
    _show_plan(app, plan, options.no_backup)
    if dry_run:
        if as_json:
            app.emit_json({"dry_run": True, **plan.to_dict()})
        app.console.print("dry run: nothing was written")
        ensure_safe(plan, options)  # like `structure --dry-run`: a refused plan exits 5
        return
    ensure_safe(plan, options)
    app.confirm(f"Apply this plan to {target.describe()}?", yes)
    confirm_locking(app, plan.structure, yes)
    with make_progress(app.err_console) as progress:
        report = run_sync(app.config, plan, options, run.run_id,
                          events=_event_printer(app), progress=progress)
    _finish(app, report, as_json, "sync complete: the target matches the source")


def _show_plan(app: App, plan: SyncPlan, no_backup: bool) -> None:
    out = app.console
    out.print(f"[bold]sync[/] {plan.source.describe()} → {plan.target.describe()}")
    if plan.structure.is_empty:
        out.print("structure: identical")
    else:
        out.print(render_plan_text(plan.structure))
    if plan.data:
        table = Table("table", "why", "rows (est.)", "size", title="data to replace")
        for item in plan.data:
            table.add_row(item.table, item.reason, f"{item.rows:,}", human_bytes(item.data_bytes))
        out.print(table)
    if plan.identical:
        out.print(f"data already identical: {', '.join(plan.identical)}")
    if no_backup:
        out.print("[yellow]backup: skipped (--no-backup): this run cannot be rolled back[/]")
    elif plan.backup_tables:
        out.print(f"backup first: {len(plan.backup_tables)} target table(s): "
                  f"{', '.join(plan.backup_tables)}")


def _event_printer(app: App) -> Any:
    out = app.err_console if app.json_mode else app.console

    def on_event(kind: str, info: dict[str, Any]) -> None:
        if kind == "step":
            out.print(f"[bold]→ {info['step']}[/]")
        elif kind == "step-done" and info.get("backup"):
            out.print(f"  backup {info['backup']}")
        elif kind == "resumed":
            out.print(f"resuming run {info['run_id']} (finished steps are not redone)")
    return on_event


def _finish(app: App, report: SyncReport, as_json: bool, message: str) -> None:
    if as_json:
        app.emit_json(report.to_dict())
    out = app.console
    out.print(_report_table(report))
    doc = report.to_dict()
    steps = ", ".join(f"{name} {s.get('seconds', 0):.1f}s" for name, s in doc["steps"].items())
    totals = doc["totals"]
    out.print(f"steps: {steps}")
    out.print(f"totals: {totals['tables_changed']} table(s) changed, {totals['rows']:,} rows, "
              f"{human_bytes(totals['bytes'])} copied in {totals['seconds']:.1f}s")
    if doc["backup"]:
        out.print(f"backup: {doc['backup']}  (undo with: dumpload rollback {report.run_id})")
    out.print(message)


def _report_table(report: SyncReport) -> Table:
    table = Table("table", "structure", "action", "rows", "bytes", "time", "verified",
                  title=f"run {report.run_id}: {report.status}")
    for t in report.to_dict()["tables"]:
        verified = {True: "[green]✓[/]", False: "[red]✗[/]", None: "-"}[t["verified"]]
        changes = [c.split(":")[0] for c in t["structure_changes"]]  # "add column phone"
        table.add_row(t["table"], "\n".join(changes) or "-", t["action"],
                      f"{t['rows']:,}", human_bytes(t["bytes"]), f"{t['seconds']:.1f}s",
                      verified)
    return table


@cli.command()
@click.argument("run_id", required=False)
@click.option("--dry-run", is_flag=True, help="Show what would be restored and dropped.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@yes_option
@pass_app
def rollback(app: App, run_id: str | None, dry_run: bool, as_json: bool, yes: bool) -> None:
    """Put back the target tables a sync run changed, from that run's pre-change backup
    (default: the last run that changed something). Tables the run created are dropped."""
    run = app.start("rollback", json_mode=as_json)
    plan = plan_rollback(app.config, run_id)
    out = app.console
    out.print(f"rollback of run {plan.journal.run_id} on {plan.journal.target} "
              f"({plan.journal.database}) from backup(s) {', '.join(plan.backups) or '-'}")
    out.print(f"restore: {', '.join(plan.restore) or '-'}")
    out.print(f"drop (created by the run): {', '.join(plan.drop) or '-'}")
    if dry_run:
        out.print("dry run: nothing was written")
        if as_json:
            app.emit_json({"dry_run": True, "run_id": plan.journal.run_id,
                           "target": plan.journal.target, "restore": plan.restore,
                           "drop": plan.drop, "backups": plan.backups})
        return
    app.confirm("Restore these tables on the target?", yes)
    result = rollback_run(app.config, plan, run.run_id)
    if as_json:
        app.emit_json(result)
    out.print(f"restored {len(result['restored'])} table(s), dropped {len(result['dropped'])}")
