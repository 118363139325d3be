"""Backups: create, list, verify, prune and restore compressed dumps of an environment.

Library entry points (the `backup` commands and the `sync`/`rollback` flow call these):

- `create_backup(config, env, tables=None, *, label=None, run_id=None) -> BackupInfo`
- `list_backups(config, env) -> list[BackupInfo]` (newest first)
- `find_backup(config, env, backup_id) -> BackupInfo` (`latest`, an id, or a path)
"""

from dumpload.backup.create import create_backup
from dumpload.backup.files import BackupInfo, Frame, find_backup, list_backups

__all__ = ["BackupInfo", "Frame", "create_backup", "find_backup", "list_backups"]
