"""Half-restored databases: what a restore that stopped between two foreign-key groups left.

A restore puts its tables in place one foreign-key group at a time (`swap_group`), so one
that is killed or fails between two groups leaves some tables restored and others not.
Its in-progress marker carries its progress (`progress_doc`): the groups, the tables whose
group's swap finished (`swapped`, written after each swap) and the group whose swap was
started and not seen to finish (`swapping`, written before it). The swap executor is a
detached process that completes a swap once it holds its lock even when dumpload dies, so
a `swapping` group counts as *possibly* restored (`uncertain`) until the server tells:
once no executor runs, a table whose work table (`_dl_shadow_<t>`) is still there was not
swapped, one whose work table is gone was (the RENAME consumed it). That evidence lasts
until leftovers are settled, so `swap.settle_leftovers` (which every writing command runs
first) and `create_backup` call `resolve` before anything drops a work table.

`classify` turns that progress into an `Outcome` (pure). A partial one is kept in
`<log_dir>/half_restored/<database>@<address>.json` until a completed restore of those
tables ends it; while it stands, every backup of tables of that database carries a
`half_restored` label in its manifest (`label_for`), and `latest` skips such a backup when
a restore picks its source. Touches only `log_dir` (and reads table names on a server).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from dumpload.backup.files import write_json_atomic
from dumpload.db import Session
from dumpload.logs import record_backup
from dumpload.private import make_dirs
from dumpload.swap import executor_lock, work_name

log = logging.getLogger(__name__)

FOLDER = "half_restored"


@dataclass(frozen=True)
class Outcome:
    """Where an unfinished restore left its tables."""

    restored: tuple[str, ...]       # their group's swap finished
    uncertain: tuple[str, ...]      # their group's swap was started: restored or not
    not_restored: tuple[str, ...]   # their group was never swapped: the old tables

    @property
    def partial(self) -> bool:
        """Some tables may hold the backup's rows while others hold the old ones.

        A group swaps atomically, so the three sets are three units: the database can be
        mixed only when two of them are non-empty."""
        return sum(map(bool, (self.restored, self.uncertain, self.not_restored))) >= 2

    def to_json(self) -> dict[str, list[str]]:
        return {"restored": list(self.restored), "uncertain": list(self.uncertain),
                "not_restored": list(self.not_restored)}


def classify(groups: Sequence[Sequence[str]], swapped: Iterable[str],
             swapping: Iterable[str]) -> Outcome:
    """The outcome of a restore of `groups` that recorded `swapped` and `swapping` (pure)."""
    done, started = set(swapped), set(swapping)
    tables = [t for g in groups for t in g]
    return Outcome(tuple(t for t in tables if t in done),
                   tuple(t for t in tables if t in started and t not in done),
                   tuple(t for t in tables if t not in done and t not in started))


def progress_doc(restore: str, backup: str, env: str, database: str, target: str,
                 groups: Sequence[Sequence[str]]) -> dict[str, Any]:
    """The `progress` entry of a restore's in-progress marker, before its first swap."""
    return {"restore": restore, "backup": backup, "env": env, "database": database,
            "target": target, "groups": [list(g) for g in groups], "swapped": [],
            "swapping": []}


def outcome_of(progress: Mapping[str, Any]) -> Outcome:
    return classify(progress.get("groups", []), progress.get("swapped", []),
                    progress.get("swapping", []))


# ---------------------------------------------------------------- what stands
def state_path(log_dir: Path, target: str) -> Path:
    return log_dir / FOLDER / f"{target}.json"


def standing(log_dir: Path, target: str) -> list[dict[str, Any]]:
    """The partial restores that stand on a target database, oldest first."""
    try:
        doc = json.loads(state_path(log_dir, target).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    entries = doc.get("entries") if isinstance(doc, dict) else None
    return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []


def _save(log_dir: Path, target: str, entries: list[dict[str, Any]]) -> None:
    path = state_path(log_dir, target)
    if not entries:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        return
    make_dirs(path.parent)
    write_json_atomic(path, {"entries": entries})


def record_partial(log_dir: Path, progress: Mapping[str, Any], outcome: Outcome) -> dict[str, Any]:
    """Keep a partial restore as standing on its target; returns the entry kept."""
    entry = {"restore": progress.get("restore"), "backup": progress.get("backup"),
             "env": progress.get("env"), "database": progress.get("database"),
             "tables": sorted(outcome.restored + outcome.uncertain),
             "uncertain": sorted(outcome.uncertain),
             "not_restored": sorted(outcome.not_restored),
             "since": datetime.now(UTC).isoformat(timespec="seconds")}
    target = str(progress.get("target"))
    _save(log_dir, target, [*standing(log_dir, target), entry])
    return entry


def warning_text(progress: Mapping[str, Any], outcome: Outcome,
                 pre_backup: str | None = None) -> str:
    """The line that tells the user the database is half-restored and what to do."""
    env, backup = progress.get("env"), progress.get("backup")
    parts = [f"restore of backup {backup} into {env} stopped between foreign-key groups: "
             f"{env} ({progress.get('database')}) is HALF-RESTORED; restored: "
             f"{', '.join(outcome.restored) or '-'}; not restored: "
             f"{', '.join(outcome.not_restored) or '-'}"]
    if outcome.uncertain:
        parts.append(f"possibly restored (its swap had started): {', '.join(outcome.uncertain)}")
    todo = f"rerun `dumpload backup restore {backup} --env {env}` to complete it"
    if pre_backup:
        todo += f", or restore {pre_backup} to undo it"
    parts.append(todo)
    return "; ".join(parts)


def settle_restore(log_dir: Path, doc: Mapping[str, Any]) -> dict[str, Any]:
    """For an interrupted restore's marker: the history fields that describe where it left
    the tables (`partial` when mixed); a partial one is kept as standing and warned about."""
    progress = doc.get("progress")
    if not isinstance(progress, Mapping):
        return {}
    outcome = outcome_of(progress)
    if not outcome.partial:
        return {"swapped": list(outcome.restored)}
    with contextlib.suppress(OSError):  # a full disk: the warning and history still tell
        record_partial(log_dir, progress, outcome)
    log.warning("%s", warning_text(progress, outcome, doc.get("pre_backup")))
    return {"partial": outcome.to_json()}


def label_for(log_dir: Path, target: str, tables: Iterable[str]) -> dict[str, Any] | None:
    """The `half_restored` label of a backup of `tables` of the target, or None.

    A backup holding any table of a standing partial restore (restored or not) is labelled:
    its tables do not come from one moment. `tables` lists the backup's tables that hold
    the interrupted restore's rows (or possibly: `uncertain`)."""
    names = set(tables)
    hits = [e for e in standing(log_dir, target)
            if names & set(e.get("tables", []) + e.get("not_restored", []))]
    if not hits:
        return None
    newest = hits[-1]
    label = {"restore": newest.get("restore"), "backup": newest.get("backup"),
             "since": newest.get("since"),
             **{k: sorted(names & {t for e in hits for t in e.get(k, [])})
                for k in ("tables", "uncertain", "not_restored")}}
    if len(hits) > 1:
        label["earlier"] = [{"restore": e.get("restore"), "backup": e.get("backup")}
                            for e in hits[:-1]]
    return label


def settle_completed(log_dir: Path, progress: Mapping[str, Any], tables: Sequence[str],
                     backup_label: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The restore of `progress` completed `tables`: they no longer hold a partial
    restore's rows. Returns the standing entries that ended.

    An entry ends once none of its restored tables is left, or once this restore covered
    every table it had not restored (the database comes from one state again). Restoring a
    backup that is itself labelled (`backup_label`) puts its mixture back: that stands."""
    gone = set(tables)
    target = str(progress.get("target"))
    kept, ended = [], []
    for entry in standing(log_dir, target):
        left = {k: [t for t in entry.get(k, []) if t not in gone]
                for k in ("tables", "uncertain", "not_restored")}
        if left["tables"] and (left["not_restored"] or not entry.get("not_restored")):
            kept.append({**entry, **left})
        else:
            ended.append(entry)
    inherited = sorted(set(backup_label.get("tables", [])) & gone) if backup_label else []
    if backup_label and inherited:
        kept.append({"restore": progress.get("restore"), "backup": progress.get("backup"),
                     "env": progress.get("env"), "database": progress.get("database"),
                     "tables": inherited,
                     **{k: sorted(set(backup_label.get(k, [])) & gone)
                        for k in ("uncertain", "not_restored")},
                     "restored_label_of": progress.get("backup"),
                     "since": datetime.now(UTC).isoformat(timespec="seconds")})
    _save(log_dir, target, kept)
    return ended


def resolve(log_dir: Path, target: str, tables: Collection[str]) -> list[dict[str, Any]]:
    """Settle the `uncertain` tables of the standing entries from the target's `tables`
    (read once no swap executor runs, before any work table is dropped). Returns the
    entries it changed; one that turns out not to be mixed ends."""
    entries = standing(log_dir, target)
    if not any(e.get("uncertain") for e in entries):
        return []
    kept, changed = [], []
    for entry in entries:
        unsure = set(entry.get("uncertain", []))
        if not unsure:
            kept.append(entry)
            continue
        left = {t for t in unsure if work_name(t) in tables}
        entry = {**entry, "uncertain": [],
                 "tables": sorted(set(entry.get("tables", [])) - left),
                 "not_restored": sorted(set(entry.get("not_restored", [])) | left)}
        changed.append(entry)
        if entry["tables"] and entry["not_restored"]:
            kept.append(entry)
        log.warning("restore %s of backup %s into %s: the swap it was in the middle of %s; "
                    "%s", entry.get("restore"), entry.get("backup"), entry.get("env"),
                    f"did not happen ({', '.join(sorted(left))} not restored)" if left
                    else f"went through ({', '.join(sorted(unsure))} restored)",
                    f"HALF-RESTORED: restored {', '.join(entry['tables'])}; not restored "
                    f"{', '.join(entry['not_restored'])}" if entry in kept
                    else "the database is not half-restored after all")
        record_backup(log_dir, {"event": "half-restored", "restore": entry.get("restore"),
                                "backup": entry.get("backup"), "env": entry.get("env"),
                                "status": "standing" if entry in kept else "ended",
                                "restored": entry["tables"],
                                "not_restored": entry["not_restored"]})
    _save(log_dir, target, kept)
    return changed


def resolve_on(session: Session, log_dir: Path, target: str) -> None:
    """`resolve` from what `session`'s database holds, unless a swap executor still runs
    there (its outcome is not known yet: the tables stay `uncertain`)."""
    if not any(e.get("uncertain") for e in standing(log_dir, target)):
        return
    busy = session.scalar("SELECT IS_USED_LOCK(%s)", (executor_lock(session.env.database),))
    if busy is not None:
        return
    names = {str(r[0]) for r in session.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")}
    resolve(log_dir, target, names)
