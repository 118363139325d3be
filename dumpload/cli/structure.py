"""`analyze` and `structure`: compare table structures, and make the target's like the source's.

Thin: parse options, call `dumpload.schema`, print, confirm. `analyze` never writes;
`structure` backs up the target tables it changes, applies the plan, and re-checks.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from dumpload.cli import cli
from dumpload.cli.app import (
    App,
    from_to_options,
    pass_app,
    resolve_envs,
    table_patterns,
    tables_option,
    yes_option,
)
from dumpload.config import DatabaseConfig
from dumpload.db import session
from dumpload.definers import check_definers
from dumpload.errors import EXIT_DIFFERENCES, StructureError
from dumpload.schema import apply_plan, plan_structure, render_plan_text
from dumpload.schema.apply import ensure_runnable, ensure_supported
from dumpload.schema.plan import Plan
from dumpload.schema.render import render_differences, render_unsafe

log = logging.getLogger(__name__)


def keep_definer_option(fn: Any) -> Any:
    return click.option("--keep-definer", is_flag=True,
                        help="Keep the source's DEFINER on views and triggers (default: "
                        "the target account, CURRENT_USER).")(fn)


def _plan(app: App, source: DatabaseConfig, target: DatabaseConfig, tables: tuple[str, ...],
          allow_unsafe: bool, keep_definer: bool, preflight: bool = False,
          rehearsal: bool = False) -> Plan:
    include, exclude = table_patterns(app, tables, app.config.replication.structure_tables)
    settings = app.config.settings
    with session(source, settings) as src, session(target, settings) as dst:
        return plan_structure(src, dst, include, exclude, allow_unsafe=allow_unsafe,
                              keep_definer=keep_definer, preflight=preflight,
                              rehearsal=rehearsal,
                              large_table_bytes=large_table_bytes(app.config.settings))


def large_table_bytes(settings: Any) -> int:
    return int(settings.large_table_mb * 1024 * 1024)


@cli.command()
@from_to_options
@tables_option
@click.option("--json", "as_json", is_flag=True,
              help="Print the differences and the plan as one JSON document on stdout.")
@keep_definer_option
@pass_app
@click.pass_context
def analyze(ctx: click.Context, app: App, from_env: str | None, to_env: str | None,
            tables: tuple[str, ...], as_json: bool, keep_definer: bool) -> None:
    """Compare the structure of the target with the source's and print the ordered SQL plan.

    Writes nothing. Exit 0 when identical, 1 when there are differences.
    """
    app.start("analyze", json_mode=as_json)
    source, target = resolve_envs(app, from_env, to_env)
    # No preflight: its row checks scan the target's tables, and analyze stays a cheap
    # read of the catalogs (structure/sync --dry-run show the preflight).
    plan = _plan(app, source, target, tables, False, keep_definer)
    log.info("analyze %s → %s: %d differences, %d statements", source.name, target.name,
             len(plan.differences), len(plan.statements))
    if as_json:
        app.emit_json({"from": source.name, "to": target.name, **plan.to_dict()})
    app.console.print(f"{source.describe()} → {target.describe()}", markup=False)
    app.console.print(render_plan_text(plan), markup=False)
    if not plan.is_empty:
        ctx.exit(EXIT_DIFFERENCES)


@cli.command()
@from_to_options
@tables_option
@click.option("--dry-run", is_flag=True, help="Print the statements; write nothing.")
@click.option("--allow-unsafe", is_flag=True,
              help="Also apply changes that may lose data (drops, narrowing, charset, engine).")
@click.option("--no-backup", is_flag=True,
              help="Do not back up the target tables before changing them.")
@keep_definer_option
@yes_option
@pass_app
def structure(app: App, from_env: str | None, to_env: str | None, tables: tuple[str, ...],
              dry_run: bool, allow_unsafe: bool, no_backup: bool, keep_definer: bool,
              yes: bool) -> None:
    """Make the target's tables, views and triggers structurally identical to the source's.

    Shows the plan, asks for confirmation, backs up the target tables it changes, applies
    the plan and checks that no difference is left (else exit 5).
    """
    run = app.start("structure")
    source, target = resolve_envs(app, from_env, to_env)
    if not dry_run:
        app.hold_target(target)
    plan = _plan(app, source, target, tables, allow_unsafe, keep_definer, preflight=True,
                 rehearsal=True)
    out = app.console
    out.print(f"{source.describe()} → {target.describe()}", markup=False)
    out.print(render_plan_text(plan), markup=False)
    if plan.is_empty:
        out.print("nothing to do")
        return
    ensure_supported(plan)
    if plan.unsafe and not allow_unsafe:
        raise StructureError(
            f"{len(plan.unsafe)} unsafe change(s); nothing was changed:\n" + render_unsafe(plan),
            hint="review them, then rerun with --allow-unsafe to apply them")
    ensure_runnable(plan, target.name)
    if dry_run:
        out.print(f"dry run: {len(plan.statements)} statements not executed; nothing written")
        return
    app.confirm(f"Apply {len(plan.statements)} statements to {target.describe()}?", yes)
    confirm_locking(app, plan, yes)
    if keep_definer:
        check_definers(target, app.config.settings, plan.statements)
    if not no_backup:
        _backup(app, target, plan, run.run_id)
    _apply(app, source, target, plan, tables, keep_definer)


def confirm_locking(app: App, plan: Plan, yes: bool) -> None:
    """Ask separately for ALTERs that block writes to a large table (unless --yes)."""
    if not plan.locking or yes:
        return
    listed = "\n".join(f"  {c.table}: {c.describe()}" for c in plan.locking)
    app.confirm(f"These statements block writes to large tables while they run:\n{listed}\n"
                "Run them?", yes)


def _backup(app: App, target: DatabaseConfig, plan: Plan, run_id: str) -> None:
    from dumpload.backup import create_backup

    existing = [t for t in plan.touched_tables if t not in plan.created_tables]
    if not existing:
        return
    app.console.print(f"backing up {len(existing)} table(s) of {target.name} …")
    info = create_backup(app.config, target, existing, label="pre-structure", run_id=run_id,
                         kind="pre-change")
    log.info("pre-structure backup %s (%s)", info.id, info.path)
    app.console.print(f"backup: {info.id}", markup=False)


def _apply(app: App, source: DatabaseConfig, target: DatabaseConfig, plan: Plan,
           tables: tuple[str, ...], keep_definer: bool) -> None:
    total = len(plan.statements)
    counter = iter(range(1, total + 1))

    def progress(sql: str) -> None:
        first = sql.splitlines()[0]
        app.console.print(f"[{next(counter)}/{total}] {first}", markup=False)

    with session(target, app.config.settings) as dst:
        apply_plan(dst, plan, on_statement=progress)
    left = _plan(app, source, target, tables, True, keep_definer)
    if not left.is_empty:
        raise StructureError(
            f"{target.name}: differences remain after applying the plan:\n"
            + render_differences(left),
            hint="run `dumpload analyze` for the remaining plan; report the case if it "
            "persists")
    app.console.print(f"done: {total} statements applied; {target.name} now matches "
                      f"{source.name}")
