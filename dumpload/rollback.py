"""`rollback`: undo a sync run's whole footprint on the target, as one swap.

A run's footprint is in its journal: tables it altered, copied or dropped (put back from
its pre-change backups), tables it created (dropped), views it created (dropped) and views
it replaced or dropped (put back). `plan_rollback` reads the journal, verifies every backup
the rollback needs (a missing or damaged backup or manifest refuses it, exit 7, before
anything is written) and compares the target with the fingerprints recorded when the run
stopped: tables changed since then are named, and the rollback refused unless `--force`
(their newer rows would be lost). `rollback_run` backs up the current state
(`pre-restore`), loads every table to put back into work tables, and puts all of them in
place — and the created tables out — with ONE `swap_group`; then views. The live tables
are untouched until that swap. Touches: the target env, its backup folder, the journal.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from dumpload import journal as journals
from dumpload.backup import create_backup, find_backup, verify_backup
from dumpload.backup.files import KIND_PRE_RESTORE, BackupInfo
from dumpload.backup.inprogress import in_progress, settle_interrupted
from dumpload.backup.restore import load_work_tables, restore_views
from dumpload.config import Config, DatabaseConfig
from dumpload.db import Session, session
from dumpload.errors import BackupError, DumpLoadError
from dumpload.logs import record_backup
from dumpload.sqltext import quote
from dumpload.swap import Replacement, settle_leftovers, swap_group

log = logging.getLogger(__name__)

ABSENT = "absent"


# --- fingerprints ------------------------------------------------------------------------

def fingerprints(s: Session, names: Sequence[str]) -> dict[str, str]:
    """A digest per table (rows + definition) or view (definition); `absent` if missing.

    Rows go in through `CHECKSUM TABLE` (one scan); the definition through SHOW CREATE, so
    an ALTER made since is seen too.
    """
    kinds = dict(s.query("SELECT TABLE_NAME, TABLE_TYPE FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = DATABASE()"))
    out = {}
    for name in names:
        kind = kinds.get(name)
        if kind is None:
            out[name] = ABSENT
        elif kind == "VIEW":
            out[name] = _digest("view", s.query(f"SHOW CREATE VIEW {quote(name)}")[0][1])
        else:
            create = s.query(f"SHOW CREATE TABLE {quote(name)}")[0][1]
            out[name] = (_digest("table", _without_auto_increment(create)) + "/"
                         + rows_checksum(s, name))
    return out


def rows_checksum(s: Session, table: str) -> str:
    """The rows' part of a table's fingerprint (the same for a work table holding them)."""
    return str(s.query(f"CHECKSUM TABLE {quote(table)}")[0][1])


def _without_auto_increment(create: str) -> str:
    # The counter moves with inserts that were rolled back; it is not a change of the table.
    return " ".join(w for w in create.split() if not w.startswith("AUTO_INCREMENT="))


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:32]


def record_final_state(config: Config, target: DatabaseConfig,
                       journal: journals.Journal) -> None:
    """Fingerprint what the run changed, as it stops; best effort (a lost server: none)."""
    try:
        with session(target, config.settings) as s:
            journal.final_state = fingerprints(s, journal.changed_objects)
    except DumpLoadError as exc:
        log.warning("could not fingerprint the tables run %s changed: %s", journal.run_id,
                    exc.message)
        journal.final_state = {}
    except Exception as exc:  # noqa: BLE001 - a lost connection mid-checksum
        log.warning("could not fingerprint the tables run %s changed: %s", journal.run_id, exc)
        journal.final_state = {}
    journal.ended = journals._now()
    journal.save()


# --- plan --------------------------------------------------------------------------------

@dataclass
class RollbackPlan:
    journal: journals.Journal
    restore: list[str]                 # tables put back from the run's backups
    drop: list[str]                    # tables the run created
    views_restore: list[str]
    views_drop: list[str]
    sources: dict[str, BackupInfo]     # table/view -> the verified backup it comes from
    drifted: list[str]                 # changed on the target since the run stopped
    picked: str                        # why this run: "named" or what was skipped
    later: list[str] = field(default_factory=list)   # later runs that changed nothing

    @property
    def backups(self) -> list[str]:
        return list(dict.fromkeys(b.id for b in self.sources.values()))

    def describe(self) -> dict[str, Any]:
        j = self.journal
        return {"run_id": j.run_id, "command": j.command, "started": j.started,
                "ended": j.ended or j.updated, "status": j.status, "source": j.source,
                "target": j.target, "database": j.database,
                "changed": {"tables_created": j.tables_created,
                            "tables_altered": j.tables_altered,
                            "tables_copied": j.tables_copied,
                            "views_created": j.views_created,
                            "views_changed": j.views_changed},
                "restore": self.restore, "drop": self.drop,
                "views_restore": self.views_restore, "views_drop": self.views_drop,
                "backups": self.backups, "changed_since_run": self.drifted,
                "picked": self.picked, "later_runs_without_changes": self.later}


def plan_rollback(config: Config, run_id: str | None) -> RollbackPlan:
    """What a rollback of `run_id` (None: the latest run that changed something) does.

    Raises `BackupError` (exit 7) when a backup or manifest it needs is missing or fails
    verification; reads the target for the drift check. Writes nothing.
    """
    log_dir = config.settings.log_dir
    journal = journals.find(log_dir, run_id)
    if journal.status == journals.ROLLED_BACK:
        raise BackupError(f"run {journal.run_id} was already rolled back (by "
                          f"{journal.rolled_back_by})", hint="its pre-restore backup undoes "
                          "that rollback: `dumpload backup list --env " + journal.target + "`")
    later = [j.run_id for j in journals.later_runs(log_dir, journal) if not j.changed_objects]
    picked = "named" if run_id else "the latest run that changed something"
    target = config.env(journal.target)
    backed = [t for t in journal.changed_tables if t in journal.backed_up_tables]
    restore_views = [v for v in journal.views_changed if v in journal.backed_up_tables]
    sources = _sources(config, target, journal, backed + restore_views)
    created = [t for t in journal.tables_created if t not in journal.backed_up_tables]
    with session(target, config.settings) as s:
        drifted = _drifted(s, journal)
    return RollbackPlan(journal, backed, created, restore_views,
                        [v for v in journal.views_created if v not in restore_views],
                        sources, drifted, picked, later)


def _sources(config: Config, target: DatabaseConfig, journal: journals.Journal,
             names: Sequence[str]) -> dict[str, BackupInfo]:
    """The verified backup of each name; `BackupError` if any is missing or damaged."""
    if names and not journal.backups:
        raise BackupError(f"run {journal.run_id} took no backup (--no-backup): it cannot be "
                          "rolled back; nothing was changed",
                          hint="restore an older backup with `dumpload backup restore`")
    infos: dict[str, BackupInfo] = {}
    for backup_id in journal.backups:
        try:
            info = find_backup(config, target, backup_id)
            verify_backup(info)
        except BackupError as exc:
            raise BackupError(f"rollback of run {journal.run_id} needs backup {backup_id}, "
                              f"which cannot be used: {exc.message}; nothing was changed",
                              hint=exc.hint) from None
        infos[backup_id] = info
    out = {}
    for name in names:
        preferred = journal.table_backup.get(name)
        holders = [b for b in infos.values() if name in b.tables + b.views]
        chosen = infos.get(preferred) if preferred else (holders[0] if holders else None)
        if chosen is None or name not in chosen.tables + chosen.views:
            raise BackupError(f"rollback of run {journal.run_id}: no backup of the run holds "
                              f"{name!r}; nothing was changed",
                              hint="restore it from another backup with `dumpload backup "
                              "restore`")
        out[name] = chosen
    return out


def _drifted(s: Session, journal: journals.Journal) -> list[str]:
    """Objects the run changed whose target state moved since the run stopped.

    After a rollback that was interrupted, a table may already hold what the rollback put
    back (its rows checksum was recorded before the swap), a created table may be gone
    and a view already restored: none of that is a change made by someone else.
    """
    if not journal.final_state:
        return []
    now = fingerprints(s, list(journal.final_state))
    expect = journal.rollback_expect
    drifted = []
    for name, fp in journal.final_state.items():
        current = now.get(name, ABSENT)
        if current == fp:
            continue
        if journal.rolling_back_by and (
                current == ABSENT or not current.partition("/")[2]  # gone, or a view
                or current.partition("/")[2] == expect.get(name)):
            continue
        drifted.append(name)
    return drifted


# --- run ---------------------------------------------------------------------------------

def ensure_allowed(plan: RollbackPlan, force: bool) -> None:
    """Refuse (exit 7) a rollback that would lose changes made since the run, unless forced."""
    if plan.drifted and not force:
        raise BackupError(f"the target changed since run {plan.journal.run_id} ended: "
                          f"{', '.join(plan.drifted)}; a rollback would lose those changes; "
                          "nothing was changed",
                          hint="look at the tables, then pass --force to roll back anyway")


def rollback_run(config: Config, plan: RollbackPlan, run_id: str, *,
                 force: bool = False) -> dict[str, Any]:
    """Put the run's footprint back as one swap; returns what was done."""
    j = plan.journal
    ensure_allowed(plan, force)
    settle_interrupted(config.settings.log_dir)
    target = config.env(j.target)
    event: dict[str, Any] = {"event": "rollback", "id": ",".join(plan.backups),
                             "env": target.name,
             "run_id": run_id, "rolls_back": j.run_id,
             "tables": plan.restore + plan.drop + plan.views_restore + plan.views_drop}
    t0 = time.monotonic()
    with in_progress(config.settings.log_dir, event) as marker:
        pre = _pre_backup(config, target, plan, run_id)
        event["pre_backup"] = pre.id if pre else None
        try:
            marker.phase("load into work tables")
            settle_leftovers(target, config.settings)
            replacements = _load(config, target, plan)
            _expect(config, target, j, replacements, run_id)
            marker.phase("swap")
            swap_group(target, config.settings, replacements
                       + [Replacement(t, None) for t in plan.drop])
            marker.phase("views")
            _views(config, target, plan)
        except (DumpLoadError, KeyboardInterrupt) as exc:
            message = exc.message if isinstance(exc, DumpLoadError) else "interrupted"
            record_backup(config.settings.log_dir, {**event, "status": "failed",
                                                    "phase": marker.doc.get("phase"),
                                                    "error": " ".join(message.split())})
            raise
        record_backup(config.settings.log_dir, {**event, "status": "ok",
                                                "seconds": round(time.monotonic() - t0, 3)})
    j.status, j.rolled_back_by = journals.ROLLED_BACK, run_id
    j.rolling_back_by, j.rollback_expect = None, {}
    j.save()
    return {"run_id": j.run_id, "restored": plan.restore, "dropped": plan.drop,
            "views_restored": plan.views_restore, "views_dropped": plan.views_drop,
            "backups": plan.backups, "pre_backup": pre.id if pre else None,
            "forced_over": plan.drifted if force else []}


def _pre_backup(config: Config, target: DatabaseConfig, plan: RollbackPlan,
                run_id: str) -> BackupInfo | None:
    with session(target, config.settings) as s:
        present = {r[0] for r in s.query("SELECT TABLE_NAME FROM information_schema.TABLES "
                                         "WHERE TABLE_SCHEMA = DATABASE()")}
    names = [n for n in plan.restore + plan.drop + plan.views_restore + plan.views_drop
             if n in present]
    if not names:
        return None
    return create_backup(config, target, names, label="pre-restore", run_id=run_id,
                         kind=KIND_PRE_RESTORE)


def _load(config: Config, target: DatabaseConfig, plan: RollbackPlan) -> list[Replacement]:
    """Every table to put back, loaded and checked in its work table."""
    with session(target, config.settings) as s:
        flavor = s.server.flavor
    out: list[Replacement] = []
    by_backup: dict[str, list[str]] = {}
    for table in plan.restore:
        by_backup.setdefault(plan.sources[table].id, []).append(table)
    for backup_id, tables in by_backup.items():
        backup = next(b for b in plan.sources.values() if b.id == backup_id)
        works = load_work_tables(config, backup, target, tables, flavor)
        out += [w.replacement() for w in works.values()]
    return out


def _expect(config: Config, target: DatabaseConfig, journal: journals.Journal,
            replacements: Sequence[Replacement], run_id: str) -> None:
    """Before the swap: note what the rolled-back tables will hold, so that a rerun after a
    kill tells "already put back" from "changed by someone since"."""
    with session(target, config.settings) as s:
        journal.rollback_expect = {r.table: rows_checksum(s, r.work) for r in replacements
                                   if r.work}
    journal.rolling_back_by = run_id
    journal.save()


def _views(config: Config, target: DatabaseConfig, plan: RollbackPlan) -> None:
    with session(target, config.settings) as s:
        for view in plan.views_drop:
            s.execute(f"DROP VIEW IF EXISTS {quote(view)}")
    by_backup: dict[str, list[str]] = {}
    for view in plan.views_restore:
        by_backup.setdefault(plan.sources[view].id, []).append(view)
    for backup_id, views in by_backup.items():
        backup = next(b for b in plan.sources.values() if b.id == backup_id)
        restore_views(config, backup, target, views)
