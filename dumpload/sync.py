"""The whole flow: analyse → back up → structure → data → verify, resumable, one report.

`analyse_sync` reads both servers and decides everything a run will do (nothing is
written). `run_sync` carries that plan out step by step, recording each step in the run
journal (`dumpload.journal`) so that a rerun after a failure or a kill resumes the same run:
the same pre-change backup stays the rollback point, finished steps are not redone, and
tables whose data already matches the source are not copied again. `dumpload.rollback`
undoes a run's footprint from its pre-change backups. A run fingerprints what it changed
when it stops (rollback's drift check), and a resumed run backs up afresh what changed on
the target since it stopped.

This module calls the areas' libraries (`schema`, `data`, `backup`) and never prints;
progress and events reach the CLI through the `events` callback.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dumpload import journal as journals
from dumpload.backup import create_backup
from dumpload.catalog import table_sizes
from dumpload.config import Config, DatabaseConfig, match_tables, select_tables
from dumpload.data import copy_tables, verify_tables
from dumpload.data.plan import DELTA, in_place_limit, no_delta_reason, strategies
from dumpload.data.plan import preflight as preflight_copy
from dumpload.db import Session, connect
from dumpload.definers import check_definers
from dumpload.errors import DumpLoadError, StructureError, VerifyError
from dumpload.logs import record_metrics
from dumpload.rollback import fingerprints, record_final_state
from dumpload.schema import Plan, apply_plan, plan_structure
from dumpload.schema.apply import ensure_supported

log = logging.getLogger(__name__)

Events = Callable[[str, dict[str, Any]], None]


@dataclass(frozen=True)
class SyncOptions:
    structure_tables: tuple[str, ...]
    data_tables: tuple[str, ...]
    exclude_tables: tuple[str, ...]
    allow_unsafe: bool = False
    no_backup: bool = False
    keep_definer: bool = False
    threads: int = 4
    lock_target: bool = False      # block writes to each target table while it is copied
    full: bool = False             # copy whole tables (no delta copy)


@dataclass
class DataItem:
    """One table whose data the run replaces, and why."""

    table: str
    reason: str            # "new table", "structure changes", "data differs"
    rows: int              # the source catalog's estimate
    data_bytes: int
    strategy: str = ""     # in-place, delta, shadow (`data.plan`), or refused
    strategy_reason: str = ""   # why: "small", "trigger", "large (...): ...", "--full", ...


@dataclass
class SyncPlan:
    source: DatabaseConfig
    target: DatabaseConfig
    structure: Plan
    data: list[DataItem]
    identical: list[str]                 # data tables that already match the source
    backup_tables: list[str]             # existing target tables and views the run changes
    analysis_seconds: float = 0.0
    created_views: list[str] = field(default_factory=list)   # views the run creates
    changed_views: list[str] = field(default_factory=list)   # target views it replaces/drops

    @property
    def is_empty(self) -> bool:
        return self.structure.is_empty and not self.data

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source.describe(), "target": self.target.describe(),
            "structure": self.structure.to_dict(),
            "data": [item.__dict__ for item in self.data],
            "identical_data_tables": self.identical,
            "backup_tables": self.backup_tables, "created_views": self.created_views,
            "changed_views": self.changed_views,
        }


@dataclass
class SyncReport:
    run_id: str
    status: str
    resumed: bool = False
    backups: list[str] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)

    def table(self, name: str) -> dict[str, Any]:
        return self.tables.setdefault(name, {"table": name, "structure_changes": [],
                                             "action": "unchanged", "strategy": None,
                                             "rows": 0, "bytes": 0, "seconds": 0.0,
                                             "verified": None})

    def to_dict(self) -> dict[str, Any]:
        rows = sum(t["rows"] for t in self.tables.values())
        data_bytes = sum(t["bytes"] for t in self.tables.values())
        return {
            "run_id": self.run_id, "status": self.status, "resumed": self.resumed,
            "backup": self.backups[-1] if self.backups else None, "backups": self.backups,
            "steps": self.steps, "tables": list(self.tables.values()),
            "totals": {"tables_changed": sum(t["action"] != "unchanged"
                                             for t in self.tables.values()),
                       "rows": rows, "bytes": data_bytes,
                       "seconds": round(sum(s.get("seconds", 0) for s in self.steps.values()),
                                        3)},
        }


def sync_options(config: Config, tables: Sequence[str] = (), *, allow_unsafe: bool = False,
                 no_backup: bool = False, keep_definer: bool = False,
                 threads: int | None = None, lock_target: bool = False,
                 full: bool = False) -> SyncOptions:
    """Options from the config; `--tables` replaces both configured lists."""
    repl = config.replication
    return SyncOptions(
        structure_tables=tuple(tables) or repl.structure_tables,
        data_tables=tuple(tables) or repl.data_tables, exclude_tables=repl.exclude_tables,
        allow_unsafe=allow_unsafe, no_backup=no_backup, keep_definer=keep_definer,
        threads=threads or config.settings.threads, lock_target=lock_target, full=full)


# --- analyse -------------------------------------------------------------------------------

def analyse_sync(config: Config, source: DatabaseConfig, target: DatabaseConfig,
                 options: SyncOptions) -> SyncPlan:
    """Everything the run would do; reads both servers, writes nothing."""
    started = time.monotonic()
    with connect(source, config.settings) as src, connect(target, config.settings) as dst:
        source_sizes = {t.name: t for t in table_sizes(src) if t.kind == "BASE TABLE"}
        # Configured data globs must each match a source table (exit 2); --tables globs
        # (the same list for structure) are checked against tables and views below.
        wanted = (select_tables(source_sizes, options.data_tables, options.exclude_tables)
                  if options.data_tables == options.structure_tables
                  else match_tables(list(source_sizes), options.data_tables,
                                    options.exclude_tables, where=source.name))
        # The data step replaces the rows of `wanted`: no orphan check on their new FKs.
        structure = plan_structure(src, dst, options.structure_tables, options.exclude_tables,
                                   allow_unsafe=options.allow_unsafe,
                                   keep_definer=options.keep_definer, preflight=True,
                                   skip_orphans=wanted, large_table_bytes=int(
                                       config.settings.large_table_mb * 1024 * 1024))
        target_objects = table_sizes(dst)
        target_tables = {t.name for t in target_objects if t.kind == "BASE TABLE"}
        target_views = {t.name for t in target_objects if t.kind == "VIEW"}
        data, identical = _data_items(config, source, target, structure, wanted, source_sizes,
                                      target_tables)
        triggered = {c.table for c in structure.changes if c.kind.endswith("_trigger")}
        _choose_strategies(config, src, dst, data, options, {
            *structure.created_tables, *structure.touched_tables, *triggered})
    # The run's footprint: tables altered, dropped or copied, tables whose triggers change
    # (a rollback puts them back with their triggers), views replaced or dropped.
    views = {c.table for c in structure.changes if c.kind.endswith("_view")}
    touched = set(structure.touched_tables) | {d.table for d in data} | triggered
    changed_views = sorted(v for v in views if v in target_views)
    backup_tables = sorted(t for t in touched if t in target_tables) + changed_views
    created_views = sorted(v for v in views - target_views - target_tables
                           if v not in structure.created_tables)
    return SyncPlan(source, target, structure, data, identical, backup_tables,
                    round(time.monotonic() - started, 3), created_views, changed_views)


def _data_items(config: Config, source: DatabaseConfig, target: DatabaseConfig, structure: Any,
                wanted: list[str], sizes: dict[str, Any],
                target_tables: set[str]) -> tuple[list[DataItem], list[str]]:
    """Which data tables need a copy. Tables the structure step leaves alone are compared
    by count and checksum first, so a rerun copies only what still differs."""
    changed = set(structure.touched_tables) | set(structure.created_tables)
    compare = [t for t in wanted if t in target_tables and t not in changed]
    same = set()
    if compare:
        result = verify_tables(config, source, target, compare)
        same = {name for name, ok in result.table_ok().items() if ok}
    items, identical = [], []
    for name in wanted:
        if name in same:
            identical.append(name)
            continue
        reason = ("new table" if name not in target_tables else
                  "structure changes" if name in changed else "data differs")
        items.append(DataItem(name, reason, sizes[name].rows, sizes[name].data_bytes))
    return items, identical


def _choose_strategies(config: Config, src: Session, dst: Session, data: list[DataItem],
                       options: SyncOptions, reshaped: set[str]) -> None:
    """Each item's strategy, as the data step will choose it (`data.plan.strategies`):
    after the structure step, so tables it creates or changes (`reshaped`) are judged on
    the source's shape, triggers and FKs with the target's rows; a new table has none, so
    it is never a delta."""
    if not data:
        return
    choices = strategies(src, dst, [d.table for d in data], in_place_limit(config.settings),
                         no_delta=no_delta_reason(full=options.full,
                                                  lock_target=options.lock_target),
                         reshaped=reshaped)
    for item in data:
        item.strategy, item.strategy_reason = choices[item.table].mode, choices[item.table].reason
        if item.strategy == DELTA and item.table in reshaped:
            # Values the structure step changes make ranges differ: past
            # `delta.MAX_FRACTION` of the rows the copy is whole ("shadow (delta too big)").
            item.strategy_reason += " (compared after the structure step)"


# --- run -----------------------------------------------------------------------------------

def run_sync(config: Config, plan: SyncPlan, options: SyncOptions, run_id: str,
             events: Events | None = None, progress: Any = None) -> SyncReport:
    """Carry out `plan`: back up, structure, data, verify. Raises the failing step's error
    with `.step`/`.table` set; the journal keeps what was done for a resume or rollback."""
    events = events or (lambda kind, info: None)
    ensure_safe(plan, options)
    if options.keep_definer:
        check_definers(plan.target, config.settings, plan.structure.statements)
    if plan.data:
        preflight_copy(config, plan.target)
    journal = journals.begin(config.settings.log_dir, run_id, plan.source.name,
                             plan.target.name, plan.target.database)
    report = SyncReport(journal.run_id, "running", resumed=journal.resumed_times > 0,
                        backups=list(journal.backups))
    report.steps["analyse"] = {"seconds": plan.analysis_seconds}
    if journal.resumed_times:
        events("resumed", {"run_id": journal.run_id, "steps": journal.steps})
    step = "backup"
    try:
        _step_backup(config, plan, options, journal, report, events)
        step = "structure"
        _step_structure(config, plan, options, journal, report, events)
        step = "data"
        _step_data(config, plan, options, journal, report, events, progress)
        step = "verify"
        _step_verify(config, plan, options, journal, report, events)
    except (DumpLoadError, KeyboardInterrupt) as exc:
        _record_failure(journal, report, step, exc)
        record_final_state(config, plan.target, journal)
        raise
    report.status = "ok"
    journal.finish(journals.DONE)
    record_final_state(config, plan.target, journal)
    _write_metrics(config, report)
    return report


def ensure_safe(plan: SyncPlan, options: SyncOptions) -> None:
    """Refuse (exit 5, nothing written) a plan with unsafe changes unless allowed."""
    ensure_supported(plan.structure)
    unsafe = plan.structure.unsafe
    if unsafe and not options.allow_unsafe:
        listed = "; ".join(f"{c.table}: {c.summary}" for c in unsafe)
        raise StructureError(f"the plan has {len(unsafe)} unsafe change(s), nothing was "
                             f"written: {listed}", hint="review them with `dumpload analyze`, "
                             "then rerun with --allow-unsafe if they are intended")
    refusals = plan.structure.refusals()
    if refusals:
        raise StructureError("the preflight refuses the structure plan, nothing was written: "
                             + "; ".join(refusals), hint="fix those rows on the target (or "
                             "change the source), then rerun; conversions that lose data run "
                             "only with --allow-unsafe")


def _record_failure(journal: journals.Journal, report: SyncReport, step: str,
                    exc: BaseException) -> None:
    table = getattr(exc, "table", None)
    if isinstance(exc, DumpLoadError):
        exc.step = step  # type: ignore[attr-defined]
        rollback = (f"rollback with `dumpload rollback {journal.run_id}`"
                    if journal.changed_tables else "nothing was changed on the target")
        exc.hint = (f"{exc.hint}; " if exc.hint else "") + (
            f"rerun `dumpload sync` to resume run {journal.run_id}, or {rollback}")
    report.status = "failed"
    journal.finish(journals.FAILED, {"step": step, "table": table, "message": str(exc)})


def _timed(report: SyncReport, step: str, events: Events) -> Callable[..., None]:
    started = time.monotonic()
    events("step", {"step": step})

    def done(**details: Any) -> None:
        report.steps[step] = {"seconds": round(time.monotonic() - started, 3), **details}
        events("step-done", {"step": step, **report.steps[step]})
    return done


def _step_backup(config: Config, plan: SyncPlan, options: SyncOptions,
                 journal: journals.Journal, report: SyncReport, events: Events) -> None:
    done = _timed(report, "backup", events)
    # On a resume, the first run's backup is the rollback point: only tables it lacks are
    # backed up now (a table half-changed by the first run must not replace its backup).
    # Tables the first run created are not backed up on a resume: rollback drops them.
    _forget_moved_backups(config, plan, journal, events)
    missing = [t for t in plan.backup_tables
               if t not in journal.backed_up_tables and t not in journal.tables_created]
    if options.no_backup or not missing:
        done(skipped=True, reason="--no-backup" if options.no_backup else "nothing to back up")
        journal.mark_step("backup", journals.DONE)
        return
    label = "pre-sync" if not journal.backups else "pre-sync-resume"
    info = create_backup(config, plan.target, missing, label=label, run_id=journal.run_id,
                         kind="pre-change")
    journal.add_unique("backups", [info.id])
    journal.table_backup.update({t: info.id for t in missing})
    journal.add_unique("backed_up_tables", missing)
    report.backups = list(journal.backups)
    journal.mark_step("backup", journals.DONE, backup=info.id)
    done(backup=info.id, tables=len(missing))


def _forget_moved_backups(config: Config, plan: SyncPlan, journal: journals.Journal,
                          events: Events) -> None:
    """On a resume: a table or view that changed on the target since the run stopped (a
    rollback, application writes) is backed up afresh; its old backup would lose them."""
    if not journal.resumed_times or not journal.final_state:
        return
    with connect(plan.target, config.settings) as dst:
        now = fingerprints(dst, [n for n in journal.final_state
                                 if n in journal.backed_up_tables])
    moved = [n for n, fp in now.items() if journal.final_state.get(n) != fp]
    if moved:
        log.info("run %s: %s changed since the run stopped; backing them up again",
                 journal.run_id, ", ".join(moved))
        events("rebackup", {"tables": moved})
        journal.backed_up_tables = [t for t in journal.backed_up_tables if t not in moved]
        journal.save()


def _step_structure(config: Config, plan: SyncPlan, options: SyncOptions,
                    journal: journals.Journal, report: SyncReport, events: Events) -> None:
    done = _timed(report, "structure", events)
    structure = plan.structure
    for change in structure.changes:
        report.table(change.table)["structure_changes"].append(change.summary)
        report.table(change.table)["action"] = "altered"
    if structure.is_empty:
        journal.mark_step("structure", journals.DONE)
        done(statements=0)
        return
    journal.add_unique("tables_created", [t for t in structure.created_tables])
    journal.add_unique("tables_altered", [t for t in structure.touched_tables]
                       + [t for t in plan.backup_tables if t not in plan.changed_views
                          and t not in {d.table for d in plan.data}])
    journal.add_unique("views_created", plan.created_views)
    journal.add_unique("views_changed", plan.changed_views)
    with connect(plan.target, config.settings) as dst:
        apply_plan(dst, structure, on_statement=lambda sql: events("sql", {"sql": sql}))
        with connect(plan.source, config.settings) as src:
            left = plan_structure(src, dst, options.structure_tables, options.exclude_tables,
                                  allow_unsafe=True, keep_definer=options.keep_definer)
    if not left.is_empty:
        raise StructureError("the structure step did not converge; still different: "
                             + "; ".join(f"{c.table}: {c.summary}" for c in left.changes),
                             hint="run `dumpload analyze` to see the remaining differences")
    journal.mark_step("structure", journals.DONE)
    done(statements=len(structure.statements))


def _step_data(config: Config, plan: SyncPlan, options: SyncOptions, journal: journals.Journal,
               report: SyncReport, events: Events, progress: Any) -> None:
    done = _timed(report, "data", events)
    tables = [item.table for item in plan.data]
    for name in plan.identical:
        report.table(name)["verified"] = None
    if not tables:
        journal.mark_step("data", journals.DONE)
        done(tables=0)
        return
    journal.add_unique("tables_copied", tables)
    for planned in plan.data:
        report.table(planned.table).update(planned_strategy=planned.strategy,
                                           strategy_reason=planned.strategy_reason)
    result = copy_tables(config, plan.source, plan.target, tables, threads=options.threads,
                         progress=progress, lock_target=options.lock_target,
                         full=options.full)
    for item in result.tables:
        entry = report.table(item.table)
        entry.update(action="copied" if entry["action"] == "unchanged" else "altered+copied",
                     rows=item.rows, bytes=item.bytes, seconds=round(item.seconds, 3),
                     strategy=item.strategy)
    journal.mark_step("data", journals.DONE, tables=len(tables))
    done(tables=len(tables), rows=sum(i.rows for i in result.tables),
         bytes=sum(i.bytes for i in result.tables))


def _step_verify(config: Config, plan: SyncPlan, options: SyncOptions,
                 journal: journals.Journal, report: SyncReport, events: Events) -> None:
    done = _timed(report, "verify", events)
    with connect(plan.source, config.settings) as src, connect(plan.target,
                                                               config.settings) as dst:
        left = plan_structure(src, dst, options.structure_tables, options.exclude_tables,
                              allow_unsafe=True, keep_definer=options.keep_definer)
        data_tables = select_tables([t.name for t in table_sizes(src) if t.kind == "BASE TABLE"],
                                    options.data_tables, options.exclude_tables)
    result = verify_tables(config, plan.source, plan.target, data_tables)
    for name, ok in result.table_ok().items():
        report.table(name)["verified"] = ok
    problems = [f"{c.table}: {c.summary}" for c in left.changes]
    problems += [f"{name}: data differs" for name, ok in result.table_ok().items() if not ok]
    if problems:
        done(ok=False, problems=problems)
        raise VerifyError("verification after sync failed: " + "; ".join(problems[:20]),
                          hint="see `dumpload verify` for details")
    journal.mark_step("verify", journals.DONE)
    done(ok=True, tables=len(data_tables))


def _write_metrics(config: Config, report: SyncReport) -> None:
    doc = report.to_dict()
    log.info("sync report: %s", json.dumps(doc, default=str))
    record_metrics(config.settings.log_dir, {"event": "sync", "run_id": report.run_id,
                                             "steps": doc["steps"], "totals": doc["totals"]})
    for entry in doc["tables"]:
        if entry["action"] != "unchanged":
            record_metrics(config.settings.log_dir, {"event": "sync-table",
                                                     "run_id": report.run_id, **entry})


def nothing_to_do(config: Config, plan: SyncPlan, run_id: str) -> SyncReport:
    """The report of a run that found the target already matching the source; an
    unfinished earlier run into the target is thereby finished."""
    settled = journals.settle(config.settings.log_dir, plan.target.name, plan.target.database)
    report = SyncReport(settled.run_id if settled else run_id, journals.NOTHING)
    report.steps["analyse"] = {"seconds": plan.analysis_seconds}
    for name in plan.identical:
        report.table(name)["verified"] = True
    return report
