"""Backups: create, list, verify, prune and restore compressed dumps of an environment.

Library entry points (the `backup` commands and the `sync`/`rollback` flow call these):

- `create_backup(config, env, tables=None, *, label=None, run_id=None, progress=None)
  -> BackupInfo` — `tables=None`: whole database; an empty list raises `BackupError`
- `restore_backup(config, backup_id_or_path, env, tables=None, *, pre_backup=True,
  run_id=None, progress=None) -> RestoreResult`
- `plan_restore(config, backup, env, tables=None) -> RestorePlan` (for --dry-run)
- `resolve_source(config, backup, env) -> (BackupInfo, skipped)`: the backup a restore
  reads; `latest` passes over backups labelled half-restored (`halfrestore`)
- `find_backup(config, env, backup_id) -> BackupInfo` (`latest`, an id, or a path;
  `env=None` searches every env)
- `list_backups(config, env) -> list[BackupInfo]` (newest first, good or not)
- `verify_backup(path_or_info) -> VerifyResult`
- `prune_backups(config, env, dry_run=False) -> PruneResult`
Every failure raises `BackupError` (exit 7).
"""

from dumpload.backup.create import create_backup
from dumpload.backup.files import BackupInfo, Frame, find_backup, list_backups
from dumpload.backup.restore import (
    RestorePlan,
    RestoreResult,
    plan_restore,
    resolve_backup,
    resolve_source,
    restore_backup,
)
from dumpload.backup.retention import PruneResult, plan_retention, prune_backups
from dumpload.backup.verify import VerifyResult, verify_backup

__all__ = ["BackupInfo", "Frame", "PruneResult", "RestorePlan", "RestoreResult",
           "VerifyResult", "create_backup", "find_backup", "list_backups", "plan_restore",
           "plan_retention", "prune_backups", "resolve_backup", "resolve_source", "restore_backup",
           "verify_backup"]
