"""Retention: which backups of an env to delete (`plan_retention`, pure) and deleting them.

Rules, for one env:
- good backups (manifest status `ok`) are kept when they are among the `max_backups`
  newest good ones AND younger than `backup_retention_days`;
- the newest good backup is always kept, however old;
- failed, manifest-less or otherwise unverified backups never count as kept good ones:
  they are deleted once older than the retention period or once a newer good one exists.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from dumpload.backup.files import BackupInfo, list_backups
from dumpload.config import Config, DatabaseConfig
from dumpload.logs import record_backup

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionItem:
    id: str
    created: datetime
    good: bool


@dataclass(frozen=True)
class PruneResult:
    deleted: list[BackupInfo]
    kept: list[BackupInfo]
    dry_run: bool


def plan_retention(items: Sequence[RetentionItem], now: datetime, retention_days: int,
                   max_backups: int) -> list[str]:
    """Ids to delete, newest first. Pure: no clock, no files."""
    cutoff = now - timedelta(days=retention_days)
    ordered = sorted(items, key=lambda i: (i.created, i.id), reverse=True)
    good = [i for i in ordered if i.good]
    newest_good = good[0] if good else None
    keep = {i.id for n, i in enumerate(good) if n < max_backups and i.created >= cutoff}
    if newest_good is not None:
        keep.add(newest_good.id)
    doomed = []
    for item in ordered:
        if item.good:
            if item.id not in keep:
                doomed.append(item.id)
        elif item.created < cutoff or (newest_good and newest_good.created >= item.created):
            doomed.append(item.id)
    return doomed


def prune_backups(config: Config, env: DatabaseConfig | str, dry_run: bool = False, *,
                  now: datetime | None = None) -> PruneResult:
    """Apply retention to an env's backups; with `dry_run` only say what would go."""
    env_name = env if isinstance(env, str) else env.name
    backups = list_backups(config, env_name)
    items = [RetentionItem(b.id, b.created(), b.is_good) for b in backups]
    doomed = set(plan_retention(items, now or datetime.now(),
                                config.settings.backup_retention_days,
                                config.settings.max_backups))
    deleted = [b for b in backups if b.id in doomed]
    kept = [b for b in backups if b.id not in doomed]
    if not dry_run:
        for b in deleted:
            _delete(config, b)
    return PruneResult(deleted, kept, dry_run)


def _delete(config: Config, backup: BackupInfo) -> None:
    for path in (backup.path, backup.manifest_path):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    log.info("pruned backup %s (%s)", backup.id, backup.status)
    record_backup(config.settings.log_dir, {"event": "prune", "status": "deleted",
                                            "id": backup.id, "env": backup.env,
                                            "backup_status": backup.status})
