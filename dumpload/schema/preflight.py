"""Preflight: check a plan against the target's rows and rehearse it, before anything runs.

1. **Data checks** (`checks.py`): each change the existing rows may not fit is counted on
   the target. Rows that do not fit refuse the whole plan (exit 5, nothing applied), naming
   table, column and row count, unless the user allows the lossy conversion that makes them
   fit (`--allow-unsafe`): that UPDATE then becomes a statement of the plan, run in order
   just before its table's ALTER. Duplicates and orphans always refuse.
2. **Rehearsal**: the plan's table statements run on empty copies of the affected tables
   in a scratch schema of the target server (`_dl_rehearsal_<random>`, always dropped),
   so errors such as 1829 surface before production is touched. Each ALTER is tried with
   `ALGORITHM=INSTANT`, then `INPLACE, LOCK=NONE`, then `INPLACE`: the first the server
   accepts is the algorithm it will use (else COPY).
3. **Cost**: for tables above the size threshold, an estimated duration from the table's
   size and a copy rate measured on the same server; such ALTERs run with
   `ALGORITHM=INPLACE, LOCK=NONE` where the rehearsal showed the server allows it, and the
   others are flagged as locking the table.

Writes only inside the scratch schema; reads the target's rows for counting.
"""

from __future__ import annotations

import contextlib
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

import pymysql

from dumpload.db import Session
from dumpload.errors import DumpLoadError
from dumpload.schema.checks import DataCheck, data_checks
from dumpload.schema.model import Schema, literal
from dumpload.schema.plan import APPLY_SQL_MODE, Change, Plan, Step
from dumpload.sqltext import quote

log = logging.getLogger(__name__)
Executor = Callable[[Session, Step, str], None]
_REFERENCES = re.compile(r"REFERENCES `((?:[^`]|``)+)` \(")

SCRATCH_PREFIX = "_dl_rehearsal_"
STALE_SCRATCH_SECONDS = 3600
ALTER_PHASES = ("drop_constraint", "alter_table", "add_foreign_key")
# "ALGORITHM=... is not supported for this operation" (MySQL and MariaDB).
UNSUPPORTED = {1845, 1846}
REBUILD_ERRORS = {1553, 1832, 1833, 1845, 1846, 1901, 1904, 1906, 3106, 3108}
DEFAULT_LARGE_TABLE_BYTES = 256 * 1024 * 1024
ONLINE_SUFFIX = ", ALGORITHM=INPLACE, LOCK=NONE"
LENIENT_SQL_MODE = "NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"


@dataclass(frozen=True)
class Verdict:
    """One data check's outcome on the target."""

    table: str
    column: str | None
    check: str
    what: str
    rows: int
    fix_sql: str | None = None

    @property
    def ok(self) -> bool:
        return self.rows == 0

    def describe(self) -> str:
        col = f".{self.column}" if self.column else ""
        return f"{self.table}{col}: {self.rows} row(s) with {self.what}"


@dataclass(frozen=True)
class Cost:
    """What one ALTER will cost on the target, as rehearsed."""

    table: str
    sql: str
    algorithm: str                  # INSTANT, INPLACE, COPY
    lock: str                       # NONE (writes go on), SHARED or EXCLUSIVE
    size_bytes: int = 0
    rows: int = 0
    seconds: float | None = None    # estimate, for tables above the threshold
    large: bool = False

    @property
    def locks_table(self) -> bool:
        return self.large and self.lock != "NONE" and self.algorithm != "INSTANT"

    def estimate_text(self) -> str:
        return "an unknown time" if self.seconds is None else \
            f"an estimated {_duration(self.seconds)}"

    def describe(self) -> str:
        text = f"{self.algorithm}, LOCK={self.lock}"
        if self.large:
            text += f"; {self.table}: {_size(self.size_bytes)}, ~{self.rows} rows"
            if self.seconds is not None:
                text += f", estimated {_duration(self.seconds)}"
            if self.locks_table:
                text += f"; writes to {self.table} blocked for that time"
        return text


@dataclass(frozen=True)
class Preflight:
    verdicts: tuple[Verdict, ...] = ()
    rehearsed: bool = False
    rehearsal_error: str | None = None
    skipped: tuple[str, ...] = ()               # what was not rehearsed, and why
    costs: tuple[Cost, ...] = ()
    rates: dict[str, float] = field(default_factory=dict)   # bytes/s per algorithm

    @property
    def failed(self) -> tuple[Verdict, ...]:
        return tuple(v for v in self.verdicts if not v.ok)

    def refusals(self, allow_unsafe: bool) -> list[str]:
        """Why the plan cannot run, for people (empty: it can)."""
        out = []
        for v in self.failed:
            if v.fix_sql is None:
                out.append(f"{v.describe()} (never fixed by deleting or guessing rows)"
                           if v.check in ("duplicates", "orphans") else v.describe())
            elif not allow_unsafe:
                out.append(f"{v.describe()} (--allow-unsafe converts them: {v.fix_sql})")
        if self.rehearsal_error:
            out.append(f"rehearsal failed: {self.rehearsal_error}")
        return out

    def cost_of(self, sql: str) -> Cost | None:
        return next((c for c in self.costs if c.sql == sql), None)

    def to_dict(self) -> dict[str, object]:
        return {"checks": [{"table": v.table, "column": v.column, "check": v.check,
                            "what": v.what, "rows": v.rows, "conversion": v.fix_sql}
                           for v in self.verdicts],
                "rehearsed": self.rehearsed, "rehearsal_error": self.rehearsal_error,
                "not_rehearsed": list(self.skipped),
                "costs": [{"table": c.table, "statement": c.sql, "algorithm": c.algorithm,
                           "lock": c.lock, "bytes": c.size_bytes, "rows": c.rows,
                           "estimated_seconds": c.seconds, "large": c.large,
                           "locks_table": c.locks_table} for c in self.costs],
                "rates_bytes_per_second": self.rates}


def scratch_name(kind: str) -> str:
    """`_dl_rehearsal_<kind>_<unix time>_<random>`: the time lets a later run drop what a
    killed one left behind."""
    return f"{SCRATCH_PREFIX}{kind}_{int(time.time())}_{secrets.token_hex(3)}"


def drop_stale_scratch(session: Session, older_than: float = STALE_SCRATCH_SECONDS) -> None:
    """Drop scratch schemas of runs killed mid-preflight (older than an hour)."""
    with contextlib.suppress(pymysql.err.MySQLError):
        for (name,) in session.query("SHOW DATABASES LIKE %s",
                                     (SCRATCH_PREFIX.replace("_", "\\_") + "%",)):
            match = re.match(re.escape(SCRATCH_PREFIX) + r"[a-z]+_(\d+)_", name)
            if match and time.time() - int(match.group(1)) > older_than:
                log.info("dropping the stale scratch schema %s", name)
                session.execute(f"DROP DATABASE IF EXISTS {quote(name)}")


# --- data checks -------------------------------------------------------------------------

def run_checks(session: Session, source: Schema, target: Schema,
               skip_orphans: Iterable[str] = ()) -> tuple[Verdict, ...]:
    """Count, on the target, the rows each change would not fit."""
    out = []
    for check in data_checks(source, target, frozenset(skip_orphans)):
        out.append(_count(session, check))
    return tuple(out)


def _count(session: Session, check: DataCheck) -> Verdict:
    try:
        rows = _converted_badly(session, check) if check.convert_to else \
            int(session.scalar(check.count_sql) or 0)
    except pymysql.err.MySQLError as exc:  # a check the server cannot run: the rehearsal and
        log.warning("preflight check on %s skipped: %s", check.table, exc)   # strict DDL
        rows = 0                                                            # still guard
    return Verdict(check.table, check.column, check.check, check.what, rows, check.fix_sql)


def _converted_badly(session: Session, check: DataCheck) -> int:
    """Rows whose value the server cannot convert to `check.convert_to`: the column is
    copied with INSERT IGNORE into a scratch table of the new type, one warning per value
    that had to be changed."""
    scratch = scratch_name("conv")
    try:
        session.execute(f"CREATE DATABASE {quote(scratch)}")
        session.execute(f"CREATE TABLE {quote(scratch)}.v (v {check.convert_to})")
        saved = session.scalar("SELECT @@SESSION.sql_mode")
        session.execute(f"SET SESSION sql_mode = '{APPLY_SQL_MODE}'")
        try:
            session.execute(f"INSERT IGNORE INTO {quote(scratch)}.v {check.count_sql}")
            return int(session.scalar("SELECT @@warning_count") or 0)
        finally:
            session.execute("SET SESSION sql_mode = %s", (saved,))
    finally:
        with contextlib.suppress(pymysql.err.MySQLError):
            session.execute(f"DROP DATABASE IF EXISTS {quote(scratch)}")


def with_conversions(plan: Plan, verdicts: Iterable[Verdict]) -> Plan:
    """The plan with an UPDATE before the first statement of each table whose rows need a
    (lossy, allowed) conversion. The UPDATEs are unsafe changes: they need --allow-unsafe."""
    fixes = [(v, v.fix_sql) for v in verdicts if not v.ok and v.fix_sql]
    if not fixes:
        return plan
    steps = list(plan.steps)
    changes = list(plan.changes)
    for v, fix_sql in fixes:
        at = next((i for i, s in enumerate(steps) if s.table == v.table
                   and s.phase == "alter_table" and s.kind != "convert"), len(steps))
        statements: tuple[str, ...] = ()
        if v.check == "charset":  # CONVERT in a strict-mode UPDATE fails instead of
            statements = (f"SET SESSION sql_mode = {literal(LENIENT_SQL_MODE)}",  # writing '?'
                          fix_sql, f"SET SESSION sql_mode = {literal(APPLY_SQL_MODE)}")
        steps.insert(at, Step("alter_table", v.table, fix_sql, kind="convert",
                              statements=statements))
        changes.append(Change(v.table, "convert_rows", v.column or "", fix_sql, False,
                              f"{v.rows} row(s) with {v.what} are changed to fit"))
    return replace(plan, steps=tuple(steps), changes=tuple(changes))


# --- rehearsal ----------------------------------------------------------------------------

def affected_tables(plan: Plan, target: Schema) -> list[str]:
    """Existing target tables the rehearsal needs: those the plan touches, and their FK
    parents and children (so FK statements meet real tables)."""
    outside = {name for name, _ in target.inbound}   # unselected children of selected tables
    touched = {s.table for s in plan.steps if s.table in target.tables or s.table in outside}
    out = set(touched)
    for name, table in target.tables.items():
        for fk in table.foreign_keys:
            if fk.ref_schema:
                continue
            if name in touched and fk.ref_table in target.tables:
                out.add(fk.ref_table)
            if fk.ref_table in touched:
                out.add(name)
    for name, fk in target.inbound:   # children outside the selection
        if fk.ref_table in touched:
            out.add(name)
    for step in plan.steps:  # new tables' FKs to existing ones
        if step.phase == "create_table":
            out |= {t for t in target.tables if f"REFERENCES {quote(t)}" in step.sql}
    return sorted(out)


def referenced_outside(plan: Plan, target: Schema) -> list[str]:
    """Tables outside the selection that the plan's FOREIGN KEYs reference: copied too, so
    the server checks the referenced columns as it will on the target."""
    names = set()
    for step in plan.steps:
        for sql in step.all_sql:
            names |= {m.replace("``", "`") for m in _REFERENCES.findall(sql)}
    return sorted(n for n in names if n not in target.tables)


def rehearse(session: Session, plan: Plan, target: Schema, execute: Executor | None = None
             ) -> tuple[dict[str, tuple[str, str]], str | None, list[str]]:
    """Run the plan's table statements on empty copies in a scratch schema.

    Returns (statement → (algorithm, lock), the first error or None, what was skipped).
    The scratch schema is dropped whatever happens. `execute(session, step, sql)` runs a
    statement with its step's session settings (apply passes its own)."""
    execute = execute or plain_execute
    database = session.env.database
    drop_stale_scratch(session)
    scratch = scratch_name("plan")
    probes: dict[str, tuple[str, str]] = {}
    skipped = [f"view {s.table}" for s in plan.steps if s.phase == "create_view"]
    saved = session.query("SELECT @@SESSION.sql_mode, @@SESSION.foreign_key_checks")[0]
    try:
        session.execute(f"CREATE DATABASE {quote(scratch)}")
    except pymysql.err.MySQLError as exc:
        return probes, None, [f"everything: cannot create a scratch schema ({exc.args[-1]})"]
    log.info("rehearsing the plan in scratch schema %s", scratch)
    try:
        session.execute(f"SET SESSION foreign_key_checks=0, sql_mode='{APPLY_SQL_MODE}'")
        for table in affected_tables(plan, target) + referenced_outside(plan, target):
            try:
                ddl = session.query(f"SHOW CREATE TABLE {quote(database)}.{quote(table)}")
            except pymysql.err.ProgrammingError:   # 1146: not on the target: nothing to copy
                continue
            session.execute(f"USE {quote(scratch)}")
            session.execute(ddl[0][1])
            session.execute(f"USE {quote(database)}")
        session.execute(f"USE {quote(scratch)}")
        error = _rehearse_steps(session, plan, probes, execute)
        return probes, error, skipped
    finally:
        with contextlib.suppress(pymysql.err.MySQLError):
            session.execute(f"USE {quote(database)}")
        with contextlib.suppress(pymysql.err.MySQLError):
            session.execute(f"DROP DATABASE IF EXISTS {quote(scratch)}")
        with contextlib.suppress(pymysql.err.MySQLError):
            session.execute("SET SESSION sql_mode=%s, foreign_key_checks=%s", saved)


def _rehearse_steps(session: Session, plan: Plan, probes: dict[str, tuple[str, str]],
                    execute: Executor) -> str | None:
    for step in plan.steps:
        if step.phase in ("create_view", "drop_view") or step.kind == "convert":
            continue
        for sql in step.all_sql:
            if step.phase in ALTER_PHASES and sql.upper().startswith("ALTER TABLE"):
                try:
                    probes[sql] = _probe(session, sql)
                    continue
                except pymysql.err.MySQLError as exc:
                    if step.fallback and exc.args and exc.args[0] in REBUILD_ERRORS:
                        failed = _run_all(session, step.fallback, step.table)
                        if failed:
                            return failed
                        probes[sql] = ("COPY", "EXCLUSIVE")   # the table is rebuilt
                        continue
                    return _describe(step.table, sql, exc)
            try:
                execute(session, step, sql)
            except pymysql.err.MySQLError as exc:
                return _describe(step.table, sql, exc)
            except DumpLoadError as exc:     # the apply executor's own error
                return f"{step.table}: {exc.message}"
    return None


def plain_execute(session: Session, step: Step, sql: str) -> None:
    """Run one statement of a step as apply does, minus logging (the default executor)."""
    if step.sql_mode is not None:
        session.execute("SET SESSION sql_mode=%s", (step.sql_mode,))
    try:
        session.execute(sql)
    finally:
        if step.sql_mode is not None:
            session.execute(f"SET SESSION sql_mode='{APPLY_SQL_MODE}'")


def _run_all(session: Session, statements: Iterable[str], table: str) -> str | None:
    for sql in statements:
        try:
            session.execute(sql)
        except pymysql.err.MySQLError as exc:
            return _describe(table, sql, exc)
    return None


def _probe(session: Session, sql: str) -> tuple[str, str]:
    """Run `sql` with the cheapest algorithm the server accepts; say which it was."""
    for suffix, verdict in ((", ALGORITHM=INSTANT", ("INSTANT", "NONE")),
                            (", ALGORITHM=INPLACE, LOCK=NONE", ("INPLACE", "NONE")),
                            (", ALGORITHM=INPLACE", ("INPLACE", "SHARED"))):
        try:
            session.execute(sql + suffix)
            return verdict
        except pymysql.err.MySQLError as exc:
            if not exc.args or exc.args[0] not in UNSUPPORTED and exc.args[0] != 1064:
                raise
    session.execute(sql)
    return "COPY", "SHARED"


def _describe(table: str, sql: str, exc: pymysql.err.MySQLError) -> str:
    code = exc.args[0] if exc.args else "?"
    detail = exc.args[1] if len(exc.args) > 1 else str(exc)
    first = " ".join(sql.split())[:200]
    return f"{table}: error {code}: {detail} (statement: {first})"


# --- cost ---------------------------------------------------------------------------------

def table_stats(session: Session, tables: Iterable[str]) -> dict[str, tuple[int, int]]:
    names = list(tables)
    if not names:
        return {}
    marks = ", ".join(["%s"] * len(names))
    rows = session.query(
        "SELECT TABLE_NAME, COALESCE(DATA_LENGTH, 0) + COALESCE(INDEX_LENGTH, 0), "
        f"COALESCE(TABLE_ROWS, 0) FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s "
        f"AND TABLE_NAME IN ({marks})", (session.env.database, *names))
    return {r[0]: (int(r[1]), int(r[2])) for r in rows}


def measure_rates(session: Session, rows: int = 40000) -> dict[str, float]:
    """Bytes per second of a table rebuild on this server, by algorithm (COPY, INPLACE),
    timed on a scratch table of `rows` rows (~100 bytes each)."""
    scratch = scratch_name("rate")
    digits = "(SELECT 0 d UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3 UNION ALL " \
             "SELECT 4 UNION ALL SELECT 5 UNION ALL SELECT 6 UNION ALL SELECT 7 UNION ALL " \
             "SELECT 8 UNION ALL SELECT 9)"
    t = f"{quote(scratch)}.r"
    rates: dict[str, float] = {}
    try:
        session.execute(f"CREATE DATABASE {quote(scratch)}")
        session.execute(f"CREATE TABLE {t} (id INT PRIMARY KEY, a VARCHAR(100), b INT, "
                        "KEY kb (b)) ENGINE=InnoDB")
        session.execute(
            f"INSERT INTO {t} SELECT n, REPEAT('x', 80), n MOD 997 FROM (SELECT "
            f"a.d + 10 * b.d + 100 * c.d + 1000 * e.d + 10000 * f.d AS n FROM {digits} a, "
            f"{digits} b, {digits} c, {digits} e, {digits} f) s WHERE n < {rows}")
        size = sum(table_stats_in(session, scratch, "r"))
        for algorithm in ("COPY", "INPLACE"):
            started = time.monotonic()
            session.execute(f"ALTER TABLE {t} FORCE, ALGORITHM={algorithm}")
            rates[algorithm] = size / max(time.monotonic() - started, 1e-3)
    except pymysql.err.MySQLError as exc:
        log.warning("could not measure the ALTER rate: %s", exc)
    finally:
        with contextlib.suppress(pymysql.err.MySQLError):
            session.execute(f"DROP DATABASE IF EXISTS {quote(scratch)}")
    return rates


def table_stats_in(session: Session, schema: str, table: str) -> tuple[int, int]:
    session.execute(f"ANALYZE TABLE {quote(schema)}.{quote(table)}")
    row = session.query("SELECT COALESCE(DATA_LENGTH, 0), COALESCE(INDEX_LENGTH, 0) FROM "
                        "information_schema.TABLES WHERE TABLE_SCHEMA = %s AND TABLE_NAME = %s",
                        (schema, table))
    return (int(row[0][0]), int(row[0][1])) if row else (0, 0)


def costs_for(plan: Plan, probes: dict[str, tuple[str, str]],
              stats: dict[str, tuple[int, int]], rates: dict[str, float],
              threshold: int) -> tuple[Cost, ...]:
    out = []
    for step in plan.steps:
        for sql in step.all_sql:
            if sql not in probes:
                continue
            algorithm, lock = probes[sql]
            size, rows = stats.get(step.table, (0, 0))
            large = size >= threshold
            seconds = None
            if large:
                rate = rates.get(algorithm)
                seconds = 0.0 if algorithm == "INSTANT" else (size / rate if rate else None)
            out.append(Cost(step.table, sql, algorithm, lock, size, rows, seconds, large))
    return tuple(out)


def with_online_alters(plan: Plan, costs: tuple[Cost, ...]) -> tuple[Plan, tuple[Cost, ...]]:
    """Large tables' ALTERs that the server can run without blocking writes say so
    explicitly (`ALGORITHM=INPLACE, LOCK=NONE`): if the server would instead block writes,
    the statement fails rather than locking a big table by surprise."""
    online = {c.sql for c in costs if c.large and c.algorithm == "INPLACE" and c.lock == "NONE"}
    if not online:
        return plan, costs
    suffix = ONLINE_SUFFIX
    steps = [replace(s, sql=s.sql + suffix) if s.sql in online and not s.statements else s
             for s in plan.steps]
    costs = tuple(replace(c, sql=c.sql + suffix) if c.sql in online else c for c in costs)
    return replace(plan, steps=tuple(steps)), costs


def run_preflight(session: Session, plan: Plan, source: Schema, target: Schema, *,
                  rehearsal: bool = True, skip_orphans: Iterable[str] = (),
                  large_table_bytes: int = DEFAULT_LARGE_TABLE_BYTES,
                  execute: Executor | None = None) -> Plan:
    """The plan with its preflight: data verdicts, (allowed) conversions, rehearsal result,
    algorithm and estimate per ALTER. Refusals are the caller's to act on
    (`Preflight.refusals`); `apply_plan` will not run a plan that has any."""
    if plan.is_empty:
        return plan
    verdicts = run_checks(session, source, target, skip_orphans)
    rehearsed_plan = plan
    plan = with_conversions(plan, verdicts)
    probes: dict[str, tuple[str, str]] = {}
    error, skipped = None, ["everything: rehearsal not asked for"]
    if rehearsal:
        probes, error, skipped = rehearse(session, rehearsed_plan, target, execute)
    stats = table_stats(session, {s.table for s in plan.steps if s.table in target.tables})
    needs_rate = any(stats.get(s.table, (0, 0))[0] >= large_table_bytes
                     and probes.get(sql, ("INSTANT",))[0] != "INSTANT"
                     for s in plan.steps for sql in s.all_sql if sql in probes)
    rates = measure_rates(session) if needs_rate else {}
    costs = costs_for(plan, probes, stats, rates, large_table_bytes)
    plan, costs = with_online_alters(plan, costs)
    rehearsed = rehearsal and not any(x.startswith("everything") for x in skipped)
    report = Preflight(verdicts, rehearsed, error, tuple(skipped), costs, rates)
    return replace(plan, preflight=report)


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return "under 1 s"
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
