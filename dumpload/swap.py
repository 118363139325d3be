"""THE swap protocol: the only code that renames a live table on a target.

`data`, `import`, `backup restore` and `rollback` build complete *work tables* next to the
live ones and hand them to `swap_group`; `settle_leftovers` runs at the start of every
writing command and finishes or undoes whatever an interrupted swap left.

A work table (`_dl_shadow_<t>`) holds every row and every index of the new table, but no
foreign key (FK names are unique per database) and no trigger (trigger names too). The
FKs and triggers the new table must carry travel next to it, as schema-model objects.

## The protocol (one group of tables linked by foreign keys)
Run by a detached executor process (`dumpload.swap_exec`), so that a SIGKILL of dumpload
after the lock is taken cannot stop it half-way:

1. lock: `LOCK TABLES` the live and work tables and outside children WRITE, outside
   parents READ. Each attempt waits at most `lock_wait_timeout` (application statements
   queue behind a waiting lock no longer than that), retried with backoff up to
   `lock_wait_total`, then exit 6 naming the blocking connections (`dumpload.mdl`).
2. guard: each live table's `UPDATE_TIME` against its value when its copy started; a
   table written since is not swapped (unlock, nothing done, exit 6).
3. move (nobody sees it: every table involved is locked): live triggers dropped and
   created on the work table; live FKs dropped and added to the work table; FKs of
   outside children dropped and re-added pointing at the work table. A failing statement
   is undone under the same lock.
4. rename: a second connection issues one atomic
   `RENAME TABLE t TO _dl_old_t, _dl_shadow_t TO t, ...`; it queues behind our lock, and
   once it is seen waiting we `UNLOCK TABLES`: the server serves the queued exclusive
   request before any application statement, which then sees the new, complete tables.
5. drop: `DROP TABLE _dl_old_*`.

## What an interruption can leave, and how `settle_leftovers` settles it
- `t` and `_dl_shadow_t`, nothing moved (killed before 3): drop the shadow.
- `t` and `_dl_shadow_t` carrying triggers/FKs (connection lost in 3): move them back
  to `t`, drop the shadow.
- `t` and `_dl_old_t` (killed after 4): `t` is the new, complete table; drop `_dl_old_t`.
- a trigger/FK in the swap record that exists nowhere (connection lost between a DROP and
  its CREATE in 3): create it on `t` from the record (`logs/swaps/`).

The rule behind every case: a trigger or FK on a work table belongs on the live table of
the same base name and moves there if that table lacks one of that name; children that
reference a work table are pointed at its live table; then work tables are dropped.
Settling takes the same bounded lock as a swap.

Triggers and views are created as the current user (`DEFINER` dropped; the body and SQL
SECURITY kept), so a non-SUPER account never fails half-way on someone else's definer.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from dumpload.catalog import OLD_PREFIX, REBUILD_PREFIX, SHADOW_PREFIX
from dumpload.config import DatabaseConfig, Settings
from dumpload.data.tables import work_name as _prefixed
from dumpload.db import SQL_MODE, Session, connect, fresh_table_stats
from dumpload.errors import DataError, DumpLoadError
from dumpload.mdl import LockBusy, lock_tables, wait_until_waiting
from dumpload.schema import flavor as fl
from dumpload.schema.inspect import query_text, triggers_from_rows
from dumpload.schema.model import ForeignKey, Trigger
from dumpload.sqltext import quote

log = logging.getLogger(__name__)

SWAP_RECORDS = "swaps"   # folder under log_dir: one record per target during a swap


@dataclass(frozen=True)
class Replacement:
    """One table of a group to swap: `work` goes in place of `table`.

    `work=None`: the live table goes away. `foreign_keys`/`triggers`: what the new table
    must carry; None keeps the live table's.
    """

    table: str
    work: str | None
    foreign_keys: tuple[ForeignKey, ...] | None = None
    triggers: tuple[Trigger, ...] | None = None


@dataclass(frozen=True)
class Fingerprint:
    """A live table's last-write time when its copy started (`ChangeGuard`)."""

    table: str
    update_time: str | None
    taken_at: str


ChangeGuard = Sequence[Fingerprint]


@dataclass
class Script:
    """What the executor runs for one swap or settle: see the module docstring."""

    database: str
    lock: list[str]                       # "`t` WRITE" / "`p` READ"
    watch: list[str]                      # live tables whose holders we report
    guard: list[Fingerprint] = field(default_factory=list)
    move: list[str] = field(default_factory=list)       # step 3, under the lock
    fence: list[str] = field(default_factory=list)      # step 3, last: refuse stray writes
    rename: str | None = None                           # step 4, second connection
    drop: list[str] = field(default_factory=list)       # step 5, work tables
    record: dict[str, Any] = field(default_factory=dict)  # what step 3 may lose

    @property
    def empty(self) -> bool:
        return not (self.move or self.rename or self.drop)


def work_name(table: str) -> str:
    """The name to build a work table for `table` under."""
    return _prefixed(SHADOW_PREFIX, table)


def old_name(table: str) -> str:
    return _prefixed(OLD_PREFIX, table)


# ---------------------------------------------------------------- catalog
@dataclass
class _Catalog:
    """Tables, FKs and triggers of one schema, as far as a swap needs them."""

    schema: str
    tables: set[str]
    fks: dict[str, list[ForeignKey]]      # by owning table
    triggers: dict[str, list[Trigger]]    # by table, in firing order

    def children_of(self, table: str) -> list[tuple[str, ForeignKey]]:
        return [(owner, fk) for owner, fks in self.fks.items() for fk in fks
                if fk.ref_table == table and fk.ref_schema is None]

    def trigger_names(self) -> set[str]:
        return {t.name for ts in self.triggers.values() for t in ts}

    def fk_names(self) -> set[str]:
        return {f.name for fs in self.fks.values() for f in fs}


def read_catalog(session: Session, schema: str | None = None) -> _Catalog:
    """Every table, FK and trigger of `schema` (default: the session's), work tables too."""
    schema = schema or session.env.database
    tables = {r[0] for r in session.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        "AND TABLE_TYPE = 'BASE TABLE'", (schema,))}
    by_fk: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in session.query_dicts(query_text("foreign_keys"), (schema,)):
        key = (fl.text(fl.get(row, "TABLE_NAME")) or "",
               fl.text(fl.get(row, "CONSTRAINT_NAME")) or "")
        by_fk.setdefault(key, []).append(row)
    fks: dict[str, list[ForeignKey]] = {}
    for (owner, name), rows in sorted(by_fk.items()):
        fks.setdefault(owner, []).append(fl.foreign_key_from_rows(name, rows, schema))
    triggers: dict[str, list[Trigger]] = {}
    for trig in triggers_from_rows(session.query_dicts(query_text("triggers"), (schema,))):
        triggers.setdefault(trig.table, []).append(trig)
    return _Catalog(schema, tables, fks, triggers)


def definitions(session: Session, schema: str, tables: Iterable[str]
                ) -> dict[str, tuple[tuple[ForeignKey, ...], tuple[Trigger, ...]]]:
    """FKs and triggers of `tables` in any schema (e.g. a scratch schema a backup was
    loaded into), ready for `Replacement.foreign_keys`/`triggers`."""
    cat = read_catalog(session, schema)
    return {t: (tuple(cat.fks.get(t, ())), tuple(cat.triggers.get(t, ()))) for t in tables}


# ---------------------------------------------------------------- parsing (pure)
_IDENT = r"`(?:[^`]|``)+`"
_FK_CLAUSE = re.compile(
    rf"CONSTRAINT\s+({_IDENT})\s+FOREIGN KEY\s*\((.*?)\)\s*REFERENCES\s+"
    rf"(?:({_IDENT})\.)?({_IDENT})\s*\((.*?)\)(.*)$", re.S | re.I)
_RULE = re.compile(r"ON\s+(DELETE|UPDATE)\s+(RESTRICT|CASCADE|SET NULL|NO ACTION|SET DEFAULT)",
                   re.I)
_TRIGGER_SQL = re.compile(
    rf"TRIGGER\s+(?:{_IDENT}\.)?({_IDENT}|\w+)\s+(BEFORE|AFTER)\s+(INSERT|UPDATE|DELETE)\s+"
    rf"ON\s+(?:{_IDENT}\.)?({_IDENT}|\w+)\s+FOR\s+EACH\s+ROW\s+"
    rf"(?:(?:FOLLOWS|PRECEDES)\s+(?:{_IDENT}|\w+)\s+)?(.*)$", re.S | re.I)


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def _names(text: str) -> tuple[str, ...]:
    return tuple(_unquote(n) for n in re.findall(_IDENT, text))


def foreign_key_from_sql(clause: str) -> ForeignKey:
    """`CONSTRAINT `x` FOREIGN KEY (...) REFERENCES ...` (as SHOW CREATE prints it)."""
    m = _FK_CLAUSE.search(clause.strip().rstrip(","))
    if not m:
        raise DataError(f"cannot read the foreign key clause {clause[:200]!r}")
    rules = {k.upper(): v.upper() for k, v in _RULE.findall(m.group(6))}
    return ForeignKey(_unquote(m.group(1)), _names(m.group(2)), _unquote(m.group(4)),
                      _names(m.group(5)), _unquote(m.group(3)) if m.group(3) else None,
                      fl.fk_rule(rules.get("DELETE")), fl.fk_rule(rules.get("UPDATE")))


def trigger_from_sql(statement: str, sql_mode: str = "", order: int = 1) -> Trigger:
    """A `CREATE [DEFINER=...] TRIGGER` statement (definer dropped) as a model trigger."""
    m = _TRIGGER_SQL.search(statement.strip())
    if not m:
        raise DataError(f"cannot read the trigger statement {statement[:200]!r}")
    return Trigger(_unquote(m.group(1)), _unquote(m.group(4)), m.group(2).upper(),
                   m.group(3).upper(), m.group(5).strip().rstrip(";"), order, "", sql_mode)


# ---------------------------------------------------------------- statements (pure)
def create_trigger_sql(trigger: Trigger, table: str) -> list[str]:
    """`trigger` created on `table` as the current user, under its own sql_mode (which
    decides whether its body truncates or fails), then the session's mode restored."""
    mode = trigger.sql_mode.replace("'", "''")
    return [f"SET SESSION sql_mode = '{mode}'",
            f"CREATE DEFINER=CURRENT_USER TRIGGER {quote(trigger.name)} {trigger.timing} "
            f"{trigger.event} ON {quote(table)} FOR EACH ROW {trigger.statement}",
            f"SET SESSION sql_mode = '{SQL_MODE}'"]


def _add_fk(table: str, fk: ForeignKey) -> str:
    return f"ALTER TABLE {quote(table)} ADD {fk.definition()}"


def _drop_fk(table: str, name: str) -> str:
    return f"ALTER TABLE {quote(table)} DROP FOREIGN KEY {quote(name)}"


def _retarget(fk: ForeignKey, names: dict[str, str]) -> ForeignKey:
    """`fk` pointing at `names[parent]` where its same-schema parent is renamed."""
    if fk.ref_schema is None and fk.ref_table in names:
        return replace(fk, ref_table=names[fk.ref_table])
    return fk


def plan_swap(cat: _Catalog, group: Sequence[Replacement],
              guard: ChangeGuard = ()) -> Script:
    """The script that puts `group` in place (pure, from a catalog read)."""
    live = {r.table for r in group if r.table in cat.tables}
    work_of = {r.table: r.work for r in group if r.work}
    lock_write = set(live) | set(work_of.values())
    lock_read: set[str] = set()
    move: list[str] = []
    record: dict[str, Any] = {"triggers": [], "fks": []}
    for r in group:
        own_fks = cat.fks.get(r.table, []) if r.table in live else []
        own_trg = cat.triggers.get(r.table, []) if r.table in live else []
        new_fks = list(own_fks if r.foreign_keys is None else r.foreign_keys)
        new_trg = list(own_trg if r.triggers is None else r.triggers)
        record["triggers"] += [[r.table, _trigger_to_json(t)] for t in own_trg]
        record["fks"] += [[r.table, _fk_to_json(fk)] for fk in own_fks]
        move += [f"DROP TRIGGER {quote(t.name)}" for t in own_trg]
        move += [_drop_fk(r.table, fk.name) for fk in own_fks]
        if r.work is None:
            continue
        for fk in new_fks:
            target = _retarget(fk, work_of)
            move.append(_add_fk(r.work, target))
            if fk.ref_schema is None and fk.ref_table not in work_of:
                lock_read.add(fk.ref_table)
        for trig in sorted(new_trg, key=_fire_order):
            move += create_trigger_sql(trig, r.work)
    for r in group:
        if r.table not in live:
            continue
        for owner, fk in cat.children_of(r.table):
            if owner in work_of or owner in {x.table for x in group}:
                continue  # a member of the group: handled by its own Replacement
            lock_write.add(owner)
            record["fks"].append([owner, _fk_to_json(fk)])
            move.append(_drop_fk(owner, fk.name))
            if r.work:
                move.append(_add_fk(owner, _retarget(fk, work_of)))
    renames = []
    for r in group:
        if r.table in live:
            renames.append(f"{quote(r.table)} TO {quote(old_name(r.table))}")
        if r.work:
            renames.append(f"{quote(r.work)} TO {quote(r.table)}")
    fence = [stmt for t in sorted(live) for stmt in fence_sql(t)]
    lock_read -= lock_write
    lock_read &= cat.tables
    return Script(
        database=cat.schema,
        lock=[f"{quote(t)} WRITE" for t in sorted(lock_write)]
        + [f"{quote(t)} READ" for t in sorted(lock_read)],
        watch=sorted(live), guard=[g for g in guard if g.table in live], move=move,
        fence=fence, rename="RENAME TABLE " + ", ".join(renames) if renames else None,
        drop=[f"DROP TABLE IF EXISTS {quote(old_name(t))}" for t in sorted(live)],
        record=record)


FENCE_PREFIX = "_dl_fence_"
FENCE_MESSAGE = "dumpload is swapping this table in; retry the statement"


def fence_name(table: str, event: str) -> str:
    return f"{FENCE_PREFIX}{event[0].lower()}_{hashlib.sha1(table.encode()).hexdigest()[:16]}"


def fence_sql(table: str) -> list[str]:
    """Triggers that refuse every write to a live table about to be swapped out.

    They exist from the end of step 3 until the table is renamed away: a write that
    reaches the old table in that instant fails (the application may retry it) instead
    of committing into a table that is about to be dropped."""
    return [f"CREATE TRIGGER {quote(fence_name(table, event))} BEFORE {event} ON "
            f"{quote(table)} FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = "
            f"'{FENCE_MESSAGE}'" for event in ("INSERT", "UPDATE", "DELETE")]


def _fire_order(t: Trigger) -> tuple[str, str, int]:
    return (t.timing, t.event, t.order)


def _trigger_to_json(t: Trigger) -> dict[str, Any]:
    return {"name": t.name, "table": t.table, "timing": t.timing, "event": t.event,
            "statement": t.statement, "order": t.order, "sql_mode": t.sql_mode}


def _fk_to_json(fk: ForeignKey) -> dict[str, Any]:
    return {"name": fk.name, "columns": list(fk.columns), "ref_table": fk.ref_table,
            "ref_columns": list(fk.ref_columns), "ref_schema": fk.ref_schema,
            "on_delete": fk.on_delete, "on_update": fk.on_update}


def _trigger_from_json(d: dict[str, Any]) -> Trigger:
    return Trigger(d["name"], d["table"], d["timing"], d["event"], d["statement"],
                   int(d["order"]), "", d["sql_mode"])


def _fk_from_json(d: dict[str, Any]) -> ForeignKey:
    return ForeignKey(d["name"], tuple(d["columns"]), d["ref_table"], tuple(d["ref_columns"]),
                      d["ref_schema"], d["on_delete"], d["on_update"])


# ---------------------------------------------------------------- settling (pure)
WORK_PREFIXES = (SHADOW_PREFIX, OLD_PREFIX)


def _base_names(cat: _Catalog, record: dict[str, Any]) -> dict[str, str]:
    """work table → live base name, for every work table found."""
    known = {t for t in cat.tables if not t.startswith(WORK_PREFIXES + (REBUILD_PREFIX,))}
    known |= {t for t, _ in record.get("triggers", [])} | {t for t, _ in record.get("fks", [])}
    out = {}
    for base in known:
        for prefix in WORK_PREFIXES:
            name = _prefixed(prefix, base)
            if name in cat.tables:
                out[name] = base
    return out


def plan_settle(cat: _Catalog, record: dict[str, Any] | None = None,
                only: set[str] | None = None) -> Script:
    """The script that settles every interrupted swap found in `cat` (pure).

    `only`: settle just these live tables (undoing a failed swap under its own lock)."""
    record = record or {}
    base_of = _base_names(cat, record)
    orphans = sorted(t for t in cat.tables if t.startswith(WORK_PREFIXES)
                     and t not in base_of)
    if only is not None:
        base_of = {w: b for w, b in base_of.items() if b in only}
        orphans = []
    fences = [t for ts in cat.triggers.values() for t in ts if t.name.startswith(FENCE_PREFIX)
              and (only is None or t.table in only or base_of.get(t.table) in only)]
    move = [f"DROP TRIGGER {quote(t.name)}" for t in fences]
    lock_write = set(base_of) | {b for b in base_of.values() if b in cat.tables}
    lock_write |= {t.table for t in fences if t.table in cat.tables}
    have_trg = {t.name for b in set(base_of.values()) for t in cat.triggers.get(b, [])}
    have_fk = {f.name for b in set(base_of.values()) for f in cat.fks.get(b, [])}
    for work, base in sorted(base_of.items()):
        for trig in cat.triggers.get(work, []):
            if trig.name.startswith(FENCE_PREFIX):
                continue  # dropped above
            move.append(f"DROP TRIGGER {quote(trig.name)}")
            if trig.name not in have_trg and base in cat.tables:
                move += create_trigger_sql(trig, base)
                have_trg.add(trig.name)
        for fk in cat.fks.get(work, []):
            move.append(_drop_fk(work, fk.name))
            if fk.name not in have_fk and base in cat.tables:
                move.append(_add_fk(base, _retarget(fk, base_of)))
                have_fk.add(fk.name)
        for owner, fk in cat.children_of(work):
            if owner in base_of:
                continue  # a work table itself: dropped below
            lock_write.add(owner)
            move.append(_drop_fk(owner, fk.name))
            move.append(_add_fk(owner, _retarget(fk, base_of)))
    move += _from_record(cat, record, have_trg | cat.trigger_names(), have_fk | cat.fk_names())
    works = sorted(base_of) + orphans
    lock_write |= set(orphans)
    return Script(database=cat.schema, lock=[f"{quote(t)} WRITE" for t in sorted(lock_write)],
                  watch=sorted({b for b in base_of.values() if b in cat.tables}), move=move,
                  drop=[f"DROP TABLE IF EXISTS {quote(t)}" for t in works])


def _from_record(cat: _Catalog, record: dict[str, Any], triggers: set[str],
                 fks: set[str]) -> list[str]:
    """Triggers/FKs an interrupted swap had dropped and not yet re-created anywhere."""
    out = []
    for table, data in record.get("triggers", []):
        if data["name"] not in triggers and table in cat.tables:
            out += create_trigger_sql(_trigger_from_json(data), table)
    for table, data in record.get("fks", []):
        if data["name"] not in fks and table in cat.tables:
            out.append(_add_fk(table, _fk_from_json(data)))
    return out


# ---------------------------------------------------------------- the public calls
OnLocking = Callable[[Session, int], None]   # (watcher session, executor's connection id)


def swap_group(db: DatabaseConfig, settings: Settings, group: Sequence[Replacement], *,
               session: Session | None = None, guard: ChangeGuard = (),
               on_locking: OnLocking | None = None, ignore: Sequence[int] = ()) -> None:
    """Put every work table of `group` in place of its live table, atomically, with its
    triggers and FKs present at the instant it becomes visible (see the module docstring).

    Raises `DataError` (exit 6), the live tables untouched, when the lock cannot be had
    within `lock_wait_total` (naming the blocking connections), when a guarded table was
    written since its copy started, or when a statement fails (then undone under the lock).
    """
    with _session(db, settings, session) as s:
        script = plan_swap(read_catalog(s), group, guard)
        run_script(db, settings, script, what="swap of " + ", ".join(r.table for r in group),
                   on_locking=(lambda cid: on_locking(s, cid)) if on_locking else None,
                   ignore=ignore)


@contextmanager
def _session(db: DatabaseConfig, settings: Settings,
             session: Session | None) -> Iterator[Session]:
    """`session`, or a new one closed afterwards."""
    if session is not None:
        yield session
        return
    with contextlib.closing(connect(db, settings)) as s:
        yield s


def settle_leftovers(db: DatabaseConfig, settings: Settings,
                     session: Session | None = None) -> list[str]:
    """Finish or undo every interrupted swap on `db`'s database; drop stale work tables.

    Returns the work tables dropped. Every writing command calls this first, while it
    holds the target lock (`dumpload.locks.target_lock`)."""
    path = record_path(settings, db)
    with _session(db, settings, session) as s:
        _wait_for_executors(s, settings)
        record = _read_record(path)
        cat = read_catalog(s)
    # A restore killed mid-swap learns from these work tables whether its last group was
    # swapped; they are about to go (a local import: the backup package imports us).
    from dumpload.backup.inprogress import settle_before_leftovers
    settle_before_leftovers(settings.log_dir, target_key(db), cat.tables)
    script = plan_settle(cat, record)
    if script.empty:
        _forget_record(path)
        return []
    log.warning("settling an interrupted run on %s: %d statement(s), dropping %s", db.name,
                len(script.move), ", ".join(s.rsplit(" ", 1)[-1] for s in script.drop) or "-")
    run_script(db, settings, script, what=f"settling leftovers on {db.name}", record=False)
    _forget_record(path)
    return [s.rsplit(" ", 1)[-1].strip("`") for s in script.drop]


def executor_lock(database: str) -> str:
    """Held by a running executor: a swap that outlived its dumpload is waited for."""
    return "dumpload-swap:" + hashlib.sha1(database.encode()).hexdigest()[:40]


def _wait_for_executors(session: Session, settings: Settings) -> None:
    name = executor_lock(session.env.database)
    got = session.scalar("SELECT GET_LOCK(%s, %s)", (name, settings.lock_wait_total))
    if got != 1:
        raise DataError(f"an earlier swap on {session.env.name} is still running after "
                        f"{settings.lock_wait_total} s", hint="wait for it, then run again")
    session.query("SELECT RELEASE_LOCK(%s)", (name,))


def record_path(settings: Settings, db: DatabaseConfig) -> Path:
    return settings.log_dir / SWAP_RECORDS / f"{target_key(db)}.json"


def target_key(db: DatabaseConfig) -> str:
    """`<database>@<host>_<port>` (or `@<socket>`), safe as a file name: one target database."""
    where = db.socket or f"{db.host}_{db.port}"
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in f"{db.database}@{where}")


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _forget_record(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()


# ---------------------------------------------------------------- the executor
class TargetChanged(DataError):
    """A live table was written to between the start of its copy and its swap."""


def run_script(db: DatabaseConfig, settings: Settings, script: Script, *, what: str,
               record: bool = True, on_locking: Callable[[int], None] | None = None,
               ignore: Sequence[int] = ()) -> None:
    """Run `script` in the detached executor and wait for its verdict (see module doc).

    The executor keeps going if we die after it holds the lock; before that, our death
    (its stdin closing) makes it give up, leaving only work tables behind."""
    job = {"db": db, "settings": settings, "script": script, "what": what,
           "record": str(record_path(settings, db)) if record else None,
           "ignore": list(ignore)}
    blob = pickle.dumps(job)
    proc = subprocess.Popen(
        [sys.executable, "-m", "dumpload.swap_exec"], stdin=subprocess.PIPE,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(struct.pack(">I", len(blob)) + blob)
    proc.stdin.flush()
    verdict: dict[str, Any] = {}
    try:
        for line in proc.stdout:
            event = json.loads(line)
            if event.get("event") == "log":
                log.log(event.get("level", logging.INFO), "%s: %s", what, event["message"])
            elif event.get("event") == "locking":
                if on_locking is not None:
                    on_locking(int(event["connection"]))
                    on_locking = None
            else:
                verdict = event
    finally:
        proc.stdin.close()
        err = proc.stderr.read().decode("utf-8", "replace").strip()
        proc.wait()
    _raise_for(verdict, what, err)


def _raise_for(verdict: dict[str, Any], what: str, stderr: str) -> None:
    kind = verdict.get("event")
    if kind == "done":
        return
    if not verdict.get("message") and stderr:
        log.error("%s: the swap executor ended without a verdict:\n%s", what, stderr[-4000:])
    last = stderr.strip().splitlines()[-1] if stderr.strip() else ""
    message = verdict.get("message") or last or "the swap executor died"
    hint = verdict.get("hint")
    if kind == "blocked":
        raise LockBusy(f"{what}: {message}", hint=hint)
    if kind == "changed":
        raise TargetChanged(f"{what}: {message}", hint=hint)
    raise DataError(f"{what} failed: {message}", hint=hint or "the live tables are "
                    "unchanged; run the command again")


# ---------------------------------------------------------------- change guard
def fingerprints(session: Session, tables: Iterable[str]) -> list[Fingerprint]:
    """Each live table's last-write time now, for `swap_group(guard=...)`.

    UPDATE_TIME has one-second resolution: a table written in the current second is
    re-read after that second has passed, so that a later write in it is not missed."""
    names = list(tables)
    if not names:
        return []
    fresh_table_stats(session)
    for _ in range(2):
        rows = session.query(
            "SELECT TABLE_NAME, UPDATE_TIME, NOW() FROM information_schema.TABLES "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME IN ("
            + ", ".join(["%s"] * len(names)) + ")", names)
        if not any(r[1] is not None and r[1] >= r[2] for r in rows):
            break
        time.sleep(1.05)
    return [Fingerprint(r[0], _stamp(r[1]), _stamp(r[2]) or "") for r in rows]


def _stamp(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%d %H:%M:%S") if value else None


def changed_since(fp: Fingerprint, update_time: datetime | None) -> bool:
    """Whether a table with `update_time` now was written after `fp` was taken (pure)."""
    now = _stamp(update_time)
    if now == fp.update_time:
        return now is not None and now >= fp.taken_at
    return True


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, DumpLoadError):
        return exc.message
    return str(exc)


def lock_bounded(session: Session, items: Sequence[str], settings: Settings) -> None:
    """`LOCK TABLES items` on `session` with the swap's bounded waits (`LockBusy` if not)."""
    watch = [i.rsplit(" ", 1)[0].strip("`").replace("``", "`") for i in items]
    lock_tables(session, items, session.env.database, watch, settings)


__all__ = ["ChangeGuard", "Fingerprint", "LockBusy", "Replacement", "TargetChanged",
           "definitions", "fingerprints", "lock_bounded", "plan_settle", "plan_swap",
           "settle_leftovers", "swap_group", "wait_until_waiting", "work_name"]
