"""Backup files on disk: names, manifests, listing and lookup.

A backup is two files in `<backup_dir>/<env>/`:

    <database>_<YYYYmmdd_HHMMSS>[_<label>][_<n>].sql.zst     the dump, zstd frames
    <same id>.manifest.json                                   what is inside, sizes, sha256

Its ID is the file name without `.sql.zst`; `latest` names the newest good backup of an
env. While a backup is being written it lives under a hidden `.<id>.sql.zst.partial` name
that `flock` keeps locked; a partial nobody holds was abandoned by a killed process.
This module only reads and names files; it never talks to a server.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dumpload.config import Config, DatabaseConfig
from dumpload.errors import BackupError, UsageError
from dumpload.private import open_private
from dumpload.shapes import MapOf, shape_error

SUFFIX = ".sql.zst"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".sql.zst.partial"
STAMP_FORMAT = "%Y%m%d_%H%M%S"
MANIFEST_FORMAT = 1
_STAMP_RE = re.compile(r"(\d{8}_\d{6})")
_LABEL_BAD = re.compile(r"[^A-Za-z0-9.-]+")

# Status of a backup as listed: only "ok" backups count as good ones.
STATUS_OK = "ok"
STATUS_FAILED = "failed"
STATUS_NO_MANIFEST = "unverified"   # a dump file without a readable manifest
STATUS_MISSING = "missing"          # a manifest whose dump file is gone

# What a backup is for (manifest `kind`); retention applies per kind.
KIND_FULL = "full"                  # `backup create` of a whole database
KIND_PRE_CHANGE = "pre-change"      # taken by sync/structure/data before a change
KIND_PRE_RESTORE = "pre-restore"    # taken by restore/rollback before overwriting
KIND_TABLES = "tables"              # `backup create --tables`: some tables, by hand
KINDS = (KIND_FULL, KIND_PRE_CHANGE, KIND_PRE_RESTORE, KIND_TABLES)
RUN_KINDS = (KIND_PRE_CHANGE, KIND_PRE_RESTORE)  # the rollback point of the run that took it


def infer_kind(manifest: Mapping[str, Any]) -> str:
    """The manifest's `kind`, or for a manifest written before kinds existed, the kind its
    label and scope imply (`pre-restore`; other `pre-*` labels; whole database)."""
    kind = manifest.get("kind")
    if kind in KINDS:
        return str(kind)
    label = str(manifest.get("label") or "")
    if label.startswith("pre-restore"):
        return KIND_PRE_RESTORE
    if label.startswith("pre-"):
        return KIND_PRE_CHANGE
    return KIND_FULL if manifest.get("whole_database") else KIND_TABLES


@dataclass(frozen=True)
class Frame:
    """One zstd frame of a backup file: a section of the dump (header, a table, footer...)."""

    # header | table | table_data | table_end | view | view_final | routines | events | footer
    # (a table's rows, when cut apart, are in table_data frames; see frames.DataSplitter)
    kind: str
    name: str | None     # table/view name for table, view and view_final frames
    offset: int          # byte offset in the compressed file
    length: int          # compressed length
    raw_length: int      # decompressed length

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "offset": self.offset,
                "length": self.length, "raw_length": self.raw_length}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> Frame:
        return cls(str(doc["kind"]), doc.get("name"), int(doc["offset"]), int(doc["length"]),
                   int(doc["raw_length"]))


@dataclass(frozen=True)
class BackupInfo:
    """A backup as found on disk (or just written): its files and its manifest."""

    id: str
    path: Path
    manifest_path: Path
    env: str
    database: str
    stamp: datetime | None            # from the file name
    status: str
    manifest: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def tables(self) -> list[str]:
        """Base tables in the backup, in dump order."""
        return list(self.manifest.get("tables", []))

    @property
    def views(self) -> list[str]:
        return list(self.manifest.get("views", []))

    @property
    def rows(self) -> dict[str, int]:
        return dict(self.manifest.get("rows", {}))

    @property
    def label(self) -> str | None:
        return self.manifest.get("label")

    @property
    def kind(self) -> str:
        return infer_kind(self.manifest)

    @property
    def protects(self) -> str | None:
        """The run this backup is the rollback point of (pre-change/pre-restore kinds)."""
        run_id = self.manifest.get("run_id")
        return str(run_id) if run_id and self.kind in RUN_KINDS else None

    @property
    def half_restored(self) -> dict[str, Any] | None:
        """The label of a backup taken while a partial restore stood on its database
        (`halfrestore.label_for`): which restore, of which backup, and which tables."""
        label = self.manifest.get("half_restored")
        return dict(label) if isinstance(label, Mapping) else None

    @property
    def frames(self) -> list[Frame]:
        return [Frame.from_json(f) for f in self.manifest.get("frames", [])]

    @property
    def is_good(self) -> bool:
        return self.status == STATUS_OK

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def created(self) -> datetime:
        """When the backup was taken: the older of its name stamp and its file's mtime.

        Taking the older one lets a backup copied in with an old name, or one whose
        mtime was set back, age the way its owner means it to.
        """
        times = [t for t in (self.stamp, _mtime(self.path) or _mtime(self.manifest_path)) if t]
        return min(times) if times else datetime.now()

    def summary(self) -> dict[str, Any]:
        """The `backup list --json` entry."""
        return {"id": self.id, "env": self.env, "database": self.database,
                "time": self.created().isoformat(timespec="seconds"), "status": self.status,
                "kind": self.kind, "protects_run": self.protects, "label": self.label,
                "tables": self.tables, "views": self.views, "rows": self.rows, "size": self.size,
                "uncompressed_size": self.manifest.get("uncompressed_bytes"),
                "run_id": self.manifest.get("run_id"), "half_restored": self.half_restored,
                "path": str(self.path)}


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime)
    except OSError:
        return None


def env_dir(config: Config, env_name: str) -> Path:
    return config.settings.backup_dir / env_name


def clean_label(label: str | None) -> str | None:
    """A label safe in a file name: letters, digits, '.', '-'; anything else becomes '-'."""
    if not label:
        return None
    cleaned = _LABEL_BAD.sub("-", label).strip("-.")
    return cleaned or None


def backup_id(database: str, stamp: str, label: str | None, n: int = 1) -> str:
    parts = [database, stamp] + ([label] if label else []) + ([str(n)] if n > 1 else [])
    return "_".join(parts)


def paths_for(folder: Path, id_: str) -> tuple[Path, Path, Path]:
    """(final dump, manifest, partial) paths of backup `id_` in `folder`."""
    return (folder / f"{id_}{SUFFIX}", folder / f"{id_}{MANIFEST_SUFFIX}",
            folder / f".{id_}{PARTIAL_SUFFIX}")


def parse_stamp(id_: str, database: str | None = None) -> datetime | None:
    """The timestamp in a backup id (after the database prefix when it is known)."""
    rest = id_[len(database) + 1:] if database and id_.startswith(database + "_") else id_
    match = _STAMP_RE.search(rest)
    if not match:
        return None
    try:
        return datetime.strptime(match.group(1), STAMP_FORMAT)
    except ValueError:
        return None


# What the readers of a manifest index into; other keys are allowed (newer writers add some).
MANIFEST_SHAPE = {
    "status": str, "database": str, "env?": str, "tables": [str], "views?": [str],
    "rows?": MapOf(int), "label?": (str, None), "run_id?": (str, None),
    "whole_database?": bool, "sha256": str, "compressed_bytes": int,
    "uncompressed_bytes": int,
    "frames": [{"kind": str, "name": (str, None), "offset": int, "length": int,
                "raw_length": int}],
}


def read_manifest(path: Path) -> dict[str, Any] | None:
    """The manifest at `path`, or None if there is none.

    A manifest that exists but cannot be read, is not JSON or lacks a key the readers use
    raises `BackupError` (exit 7) naming the file: guessing around it could restore the
    wrong thing or retain the wrong backups.
    """
    try:
        text = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise _bad_manifest(path, exc.strerror or str(exc)) from None
    try:
        doc = json.loads(text.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad_manifest(path, "not UTF-8 text") from None
    except (ValueError, RecursionError) as exc:
        raise _bad_manifest(path, f"not JSON ({exc})") from None
    if (error := shape_error(doc, MANIFEST_SHAPE)) is not None:
        raise _bad_manifest(path, error)
    return dict(doc)


def _bad_manifest(path: Path, what: str) -> BackupError:
    return BackupError(f"backup manifest {path} is damaged: {what}",
                       hint="restore it from a copy, or move the backup (its .sql.zst and "
                       ".manifest.json) out of the backup folder; `zstd -dc FILE | mariadb DB` "
                       "still restores the dump by hand")


def write_json_atomic(path: Path, doc: Mapping[str, Any]) -> None:
    """Write `doc` to a temp name, fsync, rename: a reader sees the old or the new file."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open_private(tmp, "w") as fh:
        json.dump(doc, fh, indent=2, default=str, ensure_ascii=False)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def load_info(path: Path, env_name: str | None = None) -> BackupInfo:
    """A `BackupInfo` for the dump file (or manifest file) at `path`."""
    name = path.name
    if name.endswith(MANIFEST_SUFFIX):
        id_ = name[: -len(MANIFEST_SUFFIX)]
    elif name.endswith(SUFFIX):
        id_ = name[: -len(SUFFIX)]
    else:
        id_ = name
    dump, manifest_path, _ = paths_for(path.parent, id_)
    manifest = read_manifest(manifest_path) or {}
    database = str(manifest.get("database") or "")
    env = str(manifest.get("env") or env_name or path.parent.name)
    if not manifest:
        status = STATUS_NO_MANIFEST
    elif not dump.exists():
        status = STATUS_MISSING
    else:
        status = str(manifest.get("status") or STATUS_NO_MANIFEST)
    return BackupInfo(id_, dump, manifest_path, env, database,
                      parse_stamp(id_, database or None), status, manifest)


def list_backups(config: Config, env: DatabaseConfig | str) -> list[BackupInfo]:
    """Every backup of an env (good or not), newest first."""
    env_name = env if isinstance(env, str) else env.name
    folder = env_dir(config, env_name)
    if not folder.is_dir():
        return []
    ids = set()
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        if p.name.endswith(SUFFIX):
            ids.add(p.name[: -len(SUFFIX)])
        elif p.name.endswith(MANIFEST_SUFFIX):
            ids.add(p.name[: -len(MANIFEST_SUFFIX)])
    infos = [load_info(folder / f"{i}{SUFFIX}", env_name) for i in ids]
    return sorted(infos, key=lambda b: (b.created(), b.id), reverse=True)


def find_backup(config: Config, env: DatabaseConfig | str | None, backup_id: str) -> BackupInfo:
    """The backup named by an id, `latest`, or a file path; `env=None` searches every env.

    Raises `BackupError` when nothing (or, without an env, more than one backup) matches.
    """
    as_path = Path(backup_id)
    if backup_id.endswith((SUFFIX, MANIFEST_SUFFIX)) and as_path.exists():
        return load_info(as_path)
    env_names = ([env if isinstance(env, str) else env.name] if env is not None
                 else _env_folders(config))
    found: list[BackupInfo] = []
    for name in env_names:
        backups = list_backups(config, name)
        if backup_id == "latest":
            good = [b for b in backups if b.is_good]
            found += good[:1]
        else:
            found += [b for b in backups if b.id == backup_id]
    if len(found) == 1:
        return found[0]
    where = f"environment {env_names[0]!r}" if len(env_names) == 1 else "any environment"
    if not found:
        raise BackupError(f"no backup {backup_id!r} in {where} "
                          f"({config.settings.backup_dir})",
                          hint="`dumpload backup list --env NAME` shows the backups")
    # Several environments answer: which one is meant is the user's call (exit 2).
    envs = ", ".join(sorted({b.env for b in found}))
    what = ("the latest backup is ambiguous" if backup_id == "latest"
            else f"backup {backup_id!r} exists in several environments")
    raise UsageError(f"{what}: backups of {envs}", hint="pass --env NAME")


def _env_folders(config: Config) -> list[str]:
    root = config.settings.backup_dir
    if not root.is_dir():
        return []
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
