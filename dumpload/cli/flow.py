"""`sync` (the whole flow, with its report) and `rollback` (undo a run from its backup)."""

from __future__ import annotations

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
    resolve_envs,
    tables_option,
    yes_option,
)
from dumpload.cli.structure import confirm_locking
from dumpload.config import MAX_THREADS
from dumpload.progress import make_progress
from dumpload.rollback import RollbackPlan, ensure_allowed, plan_rollback, rollback_run
from dumpload.schema import render_plan_text
from dumpload.sync import (
    SyncPlan,
    SyncReport,
    analyse_sync,
    ensure_safe,
    nothing_to_do,
    run_sync,
    sync_options,
)


@cli.command()
@from_to_options
@tables_option
@click.option("--dry-run", is_flag=True, help="Print the plan (SQL, tables to copy with the "
              "strategy each takes and why, backups) and write nothing on either server.")
@click.option("--allow-unsafe", is_flag=True, help="Allow destructive structure changes "
              "(drops, narrowing, charset or engine changes).")
@click.option("--no-backup", is_flag=True, help="Skip the pre-change backup (the run then "
              "cannot be rolled back).")
@click.option("--keep-definer", is_flag=True, help="Keep DEFINER clauses of views/triggers "
              "instead of rewriting them to the target account.")
@click.option("--threads", type=click.IntRange(1, MAX_THREADS), help="Parallel copy workers "
              "(default: settings.threads).")
@copy_mode_options
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON document.")
@yes_option
@pass_app
def sync(app: App, from_env: str | None, to_env: str | None, tables: tuple[str, ...],
         dry_run: bool, allow_unsafe: bool, no_backup: bool, keep_definer: bool,
         threads: int | None, full: bool, lock_target: bool, as_json: bool,
         yes: bool) -> None:
    """Bring the target in line with the source: analyse, back up, apply the structure
    changes, replace the data of the data tables, verify — then report.

    A failed or interrupted run is resumed by running sync again; `dumpload rollback`
    undoes a run from its pre-change backup.
    """
    run = app.start("sync", json_mode=as_json)
    source, target = resolve_envs(app, from_env, to_env)
    if not dry_run:
        app.hold_target(target)
    options = sync_options(app.config, tables, allow_unsafe=allow_unsafe, no_backup=no_backup,
                           keep_definer=keep_definer, threads=threads,
                           lock_target=lock_target, full=full)
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
        table = Table("table", "why", "rows (est.)", "size", "strategy", "because",
                      title="data to replace")
        for item in plan.data:
            table.add_row(item.table, item.reason, f"{item.rows:,}", human_bytes(item.data_bytes),
                          item.strategy, item.strategy_reason)
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
    table = Table("table", "structure", "action", "strategy", "rows", "bytes", "time",
                  "verified", title=f"run {report.run_id}: {report.status}")
    for t in report.to_dict()["tables"]:
        verified = {True: "[green]✓[/]", False: "[red]✗[/]", None: "-"}[t["verified"]]
        changes = [c.split(":")[0] for c in t["structure_changes"]]  # "add column phone"
        table.add_row(t["table"], "\n".join(changes) or "-", t["action"],
                      t["strategy"] or "-", f"{t['rows']:,}", human_bytes(t["bytes"]),
                      f"{t['seconds']:.1f}s", verified)
    return table


@cli.command()
@click.argument("run_id", required=False)
@click.option("--dry-run", is_flag=True, help="Show the run, what would be put back and "
              "dropped, and what changed since the run; write nothing.")
@click.option("--force", is_flag=True, help="Roll back even though target tables changed "
              "after the run ended (those changes are lost; a pre-restore backup keeps them).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON document.")
@yes_option
@pass_app
def rollback(app: App, run_id: str | None, dry_run: bool, force: bool, as_json: bool,
             yes: bool) -> None:
    """Undo a sync run's whole footprint on the target as one swap: tables it changed are
    put back from its pre-change backups, tables and views it created are dropped, views
    it replaced or dropped come back (default: the latest run that changed something).

    Refused (exit 7, nothing changed) when a backup it needs is missing or damaged, or
    when target tables changed after the run ended (unless --force)."""
    run = app.start("rollback", json_mode=as_json)
    plan = plan_rollback(app.config, run_id)
    _show_rollback(app, plan)
    if dry_run:
        if as_json:
            app.emit_json({"dry_run": True, **plan.describe()})
        app.console.print("dry run: nothing was written")
        ensure_allowed(plan, force)  # a rollback that would be refused: exit 7 here too
        return
    ensure_allowed(plan, force)
    app.confirm("Roll back this run on the target?", yes)
    app.hold_target(app.config.env(plan.journal.target))
    result = rollback_run(app.config, plan, run.run_id, force=force)
    if as_json:
        app.emit_json(result)
    app.console.print(f"rolled back run {result['run_id']}: restored "
                      f"{len(result['restored'])} table(s), dropped {len(result['dropped'])}, "
                      f"views restored {len(result['views_restored'])}, dropped "
                      f"{len(result['views_dropped'])}")
    if result["pre_backup"]:
        app.console.print(f"the state before the rollback is backup {result['pre_backup']}")


def _show_rollback(app: App, plan: RollbackPlan) -> None:
    out = app.console
    j = plan.journal
    if plan.picked != "named":
        out.print(f"no run id given: rolling back run {j.run_id}, {plan.picked}"
                  + (f" (later runs that changed nothing: {', '.join(plan.later)})"
                     if plan.later else ""))
    out.print(f"run {j.run_id}: {j.command} {j.source} → {j.target} ({j.database}), "
              f"started {j.started}, ended {j.ended or j.updated}, status {j.status}")
    changed = [("created", j.tables_created), ("altered", j.tables_altered),
               ("copied", j.tables_copied), ("views created", j.views_created),
               ("views replaced/dropped", j.views_changed)]
    out.print("it changed: " + ("; ".join(f"{what}: {', '.join(names)}"
                                          for what, names in changed if names) or "nothing"))
    out.print(f"put back from backup(s) {', '.join(plan.backups) or '-'}: "
              f"{', '.join(plan.restore + plan.views_restore) or '-'}")
    out.print(f"drop (created by the run): {', '.join(plan.drop + plan.views_drop) or '-'}")
    if plan.drifted:
        out.print(f"[yellow]changed on the target since the run ended: "
                  f"{', '.join(plan.drifted)}[/]")
