"""Retention: which backups of an env to delete (`plan_retention`, pure) and deleting them.

Rules, for one env (a backup is *good* when its manifest says `ok` and, for the newest
full one, its file verifies):
- `backup_retention_days` and `max_backups` apply per kind (`full`, `pre-change`,
  `pre-restore`, `tables`): a good backup is kept while it is among the `max_backups`
  newest good ones of its kind AND younger than `backup_retention_days`;
- the newest good backup of each kind is always kept, however old (so the newest verified
  `full` backup is never deleted);
- the rollback point of a run (its `pre-change`/`pre-restore` backups, by run id) is kept
  for the most recent run, and for every run newer than the newest good full backup: with
  no newer full backup, those are the only way back to the state before each run;
- `keep_daily`/`keep_weekly`/`keep_monthly` (0 = off) also keep, of the good full backups,
  the newest of each of the last N days / ISO weeks / months that have one (the
  grandfather-father-son scheme of automysqlbackup);
- failed, manifest-less or otherwise unverified backups never count as kept good ones:
  they are deleted once older than the retention period or once a newer good one exists.
A backup is kept if any rule keeps it. `prune_backups` deletes files in the backup folder
only; it never talks to a server.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from dumpload.backup.files import KIND_FULL, RUN_KINDS, BackupInfo, list_backups
from dumpload.backup.verify import verify_backup
from dumpload.config import Config, DatabaseConfig, Settings
from dumpload.errors import BackupError
from dumpload.logs import record_backup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionItem:
    id: str
    created: datetime
    good: bool
    kind: str = KIND_FULL
    run_id: str | None = None     # the run whose rollback point this is (run kinds only)


@dataclass(frozen=True)
class RetentionPolicy:
    retention_days: int = 30
    max_backups: int = 50
    keep_daily: int = 0
    keep_weekly: int = 0
    keep_monthly: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> RetentionPolicy:
        return cls(settings.backup_retention_days, settings.max_backups, settings.keep_daily,
                   settings.keep_weekly, settings.keep_monthly)


@dataclass(frozen=True)
class RetentionPlan:
    delete: list[str]                                   # ids, newest first
    reasons: dict[str, str] = field(default_factory=dict)  # id -> why kept / why deleted


def plan_retention(items: Sequence[RetentionItem], now: datetime,
                   policy: RetentionPolicy) -> RetentionPlan:
    """Which backups to delete, and why each is kept or deleted. Pure: no clock, no files."""
    cutoff = now - timedelta(days=policy.retention_days)
    ordered = sorted(items, key=lambda i: (i.created, i.id), reverse=True)
    good = [i for i in ordered if i.good]
    keep: dict[str, str] = {}

    def hold(item: RetentionItem, reason: str) -> None:
        keep.setdefault(item.id, reason)

    for item in _protected_runs(good):
        hold(item, f"rollback point of run {item.run_id}")
    for kind in dict.fromkeys(i.kind for i in good):
        of_kind = [i for i in good if i.kind == kind]
        hold(of_kind[0], f"newest good {kind} backup")
        for n, item in enumerate(of_kind):
            if n < policy.max_backups and item.created >= cutoff:
                hold(item, f"within max_backups ({policy.max_backups}) and "
                     f"{policy.retention_days} days for {kind}")
    fulls = [i for i in good if i.kind == KIND_FULL]
    for count, label, key in ((policy.keep_daily, "daily", _day), (policy.keep_weekly, "weekly",
                              _week), (policy.keep_monthly, "monthly", _month)):
        for item in _newest_per_period(fulls, key, count):
            hold(item, f"{label} full backup")
    newest_good = good[0] if good else None
    delete, reasons = [], dict(keep)
    for item in ordered:
        if item.id in keep:
            continue
        if item.good:
            reasons[item.id] = (f"beyond max_backups ({policy.max_backups}) or older than "
                                f"{policy.retention_days} days for {item.kind}")
        elif item.created < cutoff or (newest_good and newest_good.created >= item.created):
            reasons[item.id] = "not a good backup, and a newer good one exists or it is old"
        else:
            reasons[item.id] = "not a good backup, kept for now (newest, recent)"
            continue
        delete.append(item.id)
    return RetentionPlan(delete, reasons)


def _protected_runs(good: Sequence[RetentionItem]) -> list[RetentionItem]:
    """Good rollback points of the most recent run and of every run newer than the newest
    good full backup. A run's time is that of its newest backup."""
    runs: dict[str, list[RetentionItem]] = {}
    for item in good:
        if item.kind in RUN_KINDS and item.run_id:
            runs.setdefault(item.run_id, []).append(item)
    if not runs:
        return []
    when = {run: max(i.created for i in items) for run, items in runs.items()}
    latest = max(when, key=lambda r: (when[r], r))
    newest_full = next((i.created for i in good if i.kind == KIND_FULL), None)
    chosen = [r for r in runs if r == latest or newest_full is None or when[r] > newest_full]
    return [i for r in chosen for i in runs[r]]


def _day(t: datetime) -> Hashable:
    return t.date()


def _week(t: datetime) -> Hashable:
    return tuple(t.isocalendar())[:2]


def _month(t: datetime) -> Hashable:
    return (t.year, t.month)


def _newest_per_period(items: Sequence[RetentionItem], key: Callable[[datetime], Hashable],
                       count: int) -> list[RetentionItem]:
    """The newest item of each of the `count` most recent periods that have one
    (`items` newest first)."""
    chosen: dict[Hashable, RetentionItem] = {}
    for item in items:
        period = key(item.created)
        if period not in chosen:
            if len(chosen) >= count:
                break
            chosen[period] = item
    return list(chosen.values())


@dataclass(frozen=True)
class PruneResult:
    deleted: list[BackupInfo]
    kept: list[BackupInfo]
    dry_run: bool
    reasons: dict[str, str] = field(default_factory=dict)


def prune_backups(config: Config, env: DatabaseConfig | str, dry_run: bool = False, *,
                  now: datetime | None = None) -> PruneResult:
    """Apply retention to an env's backups; with `dry_run` only say what would go."""
    env_name = env if isinstance(env, str) else env.name
    backups = list_backups(config, env_name)
    damaged = _damaged_newest_fulls(backups)
    items = [RetentionItem(b.id, b.created(), b.is_good and b.id not in damaged, b.kind,
                           b.protects) for b in backups]
    plan = plan_retention(items, now or datetime.now(),
                          RetentionPolicy.from_settings(config.settings))
    doomed = set(plan.delete)
    deleted = [b for b in backups if b.id in doomed]
    kept = [b for b in backups if b.id not in doomed]
    if not dry_run:
        for b in deleted:
            _delete(config, b)
    return PruneResult(deleted, kept, dry_run, plan.reasons)


def _damaged_newest_fulls(backups: Sequence[BackupInfo]) -> set[str]:
    """Full backups, newest first, that fail verification, up to the first that passes:
    "the newest verified full backup" must really restore."""
    damaged = set()
    for b in backups:
        if not (b.is_good and b.kind == KIND_FULL):
            continue
        try:
            verify_backup(b)
        except BackupError as exc:
            log.warning("full backup %s fails verification, not counted as good: %s", b.id,
                        exc.message)
            damaged.add(b.id)
            continue
        break
    return damaged


def _delete(config: Config, backup: BackupInfo) -> None:
    for path in (backup.path, backup.manifest_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("pruned backup %s (%s)", backup.id, backup.status)
    record_backup(config.settings.log_dir, {"event": "prune", "status": "deleted",
                                            "id": backup.id, "env": backup.env,
                                            "kind": backup.kind,
                                            "backup_status": backup.status})
