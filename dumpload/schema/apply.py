"""Plan against live servers and apply a plan to the target.

`plan_structure` reads both schemas and diffs them (reads only). `apply_plan` executes a
plan's steps in order on the target session; it is the only writer in this package.

Session settings while applying:
- `foreign_key_checks=0`: tables with FKs to each other can be created in any order,
  a column that a foreign key uses can be changed while its FKs are dropped and re-added,
  and re-adding an FK does not re-scan the child table (the data step replaces rows anyway).
- a strict `sql_mode` (STRICT_ALL_TABLES): an ALTER that would truncate or convert existing
  values (a narrowing the user allowed with --allow-unsafe, NULLs into NOT NULL) fails with
  the server's error instead of silently changing rows. The user fixes the rows and reruns.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Sequence

import pymysql

from dumpload.catalog import is_work_table
from dumpload.config import match_tables
from dumpload.db import Session
from dumpload.errors import StructureError
from dumpload.schema.diff import diff
from dumpload.schema.inspect import load_schema
from dumpload.schema.plan import APPLY_SQL_MODE, Plan, Step
from dumpload.schema.preflight import (
    DEFAULT_LARGE_TABLE_BYTES,
    ONLINE_SUFFIX,
    run_preflight,
)
from dumpload.sqltext import elide_values

log = logging.getLogger(__name__)

# Server errors meaning "this ALTER cannot be done on this table as it is": the table is
# rebuilt instead (shadow copy + atomic rename). Column used by a foreign key (1832, 1833),
# index needed by a foreign key (1553), generated-column restrictions (1901-1906, 3106,
# 3108), operation not supported by the engine (1845, 1846).
REBUILD_ERRORS = {1553, 1832, 1833, 1845, 1846, 1901, 1904, 1906, 3106, 3108}


def plan_structure(source_session: Session, target_session: Session,
                   include: Sequence[str] = ("*",), exclude: Sequence[str] = (), *,
                   allow_unsafe: bool = False, keep_definer: bool = False,
                   preflight: bool = False, rehearsal: bool = True,
                   skip_orphans: Sequence[str] = (),
                   large_table_bytes: int = DEFAULT_LARGE_TABLE_BYTES) -> Plan:
    """Inspect both databases and return the plan that makes the target like the source.

    With `preflight`, the plan is also checked against the target's rows and (with
    `rehearsal`) rehearsed in a scratch schema: see `schema.preflight`. `skip_orphans`
    names tables whose rows a later step replaces (no orphan check on their new FKs).

    A pattern of `include` that matches no table or view on either side is a `UsageError`
    (exit 2): comparing nothing is never what was meant.
    """
    names = sorted(set(table_names(source_session)) | set(table_names(target_session)))
    match_tables(names, include, exclude,
                 where=f"{source_session.env.name} or {target_session.env.name}")
    source = load_schema(source_session, include, exclude)
    target = load_schema(target_session, include, exclude)
    plan = diff(source, target, allow_unsafe=allow_unsafe, keep_definer=keep_definer)
    if preflight:
        plan = run_preflight(target_session, plan, source, target, rehearsal=rehearsal,
                             skip_orphans=skip_orphans, large_table_bytes=large_table_bytes,
                             execute=_execute)
    return plan


def ensure_runnable(plan: Plan, where: str) -> None:
    """Refuse (StructureError, exit 5) a plan with unsafe changes not allowed, or one its
    preflight refuses; nothing has been written when this raises."""
    if plan.unsafe and not plan.allow_unsafe:
        raise StructureError(
            f"{len(plan.unsafe)} unsafe change(s) in the plan for {where}; "
            "nothing was changed:\n" + "\n".join(
                f"  {c.table}: {c.summary}" for c in plan.unsafe),
            hint="review them, then rerun with --allow-unsafe to apply them")
    refusals = plan.refusals()
    if refusals:
        raise StructureError(
            f"the preflight refuses the plan for {where}; nothing was changed:\n"
            + "\n".join(f"  {r}" for r in refusals),
            hint="fix those rows on the target (or change the source), then rerun; "
            "conversions that lose data run only with --allow-unsafe")


def ensure_supported(plan: Plan) -> None:
    """Refuse (exit 5, nothing written) a plan with tables the model cannot represent."""
    if plan.refused:
        raise StructureError(
            f"{len(plan.refused)} table clause(s) dumpload cannot model; nothing was "
            "changed:\n" + "\n".join(f"  {r}" for r in plan.refused),
            hint="change those tables by hand (or exclude them with exclude_tables), "
            "then rerun")


def table_names(session: Session) -> list[str]:
    """Tables and views of the session's database, dumpload's own work tables left out."""
    rows = session.query("SELECT TABLE_NAME FROM information_schema.TABLES "
                         "WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME", (session.env.database,))
    return [r[0] for r in rows if not is_work_table(r[0])]


def apply_plan(session: Session, plan: Plan,
               on_statement: Callable[[str], None] | None = None) -> int:
    """Execute the plan's statements on the target; returns how many ran.

    Refuses (StructureError, nothing written) when the plan has unsafe changes and was not
    built with allow_unsafe. `on_statement(sql)` is called before each statement.
    """
    ensure_supported(plan)
    ensure_runnable(plan, session.env.name)
    done = 0
    saved = session.query("SELECT @@SESSION.sql_mode, @@SESSION.foreign_key_checks")[0]
    session.execute(f"SET SESSION foreign_key_checks=0, sql_mode='{APPLY_SQL_MODE}'")
    try:
        for step in plan.steps:
            for sql in step.all_sql:
                done += 1
                if on_statement:
                    on_statement(sql)
                try:
                    _execute(session, step, sql)
                except StructureError as exc:
                    # An ALTER asked to run online is never replaced by a locking rebuild.
                    if not (step.fallback and getattr(exc, "code", None) in REBUILD_ERRORS) \
                            or sql.endswith(ONLINE_SUFFIX):
                        raise
                    _rebuild(session, step, exc, on_statement)
    finally:
        # A lost connection must surface as the statement's error, not as this one.
        with contextlib.suppress(pymysql.err.Error):
            session.execute("SET SESSION sql_mode=%s, foreign_key_checks=%s", saved)
    return done


def _execute(session: Session, step: Step, sql: str) -> None:
    # Literals elided at INFO (a plan may carry values); --log-level DEBUG logs them whole.
    log.info("structure: %s", elide_values(sql, keep=1000))
    log.debug("structure (as sent): %s", sql)
    try:
        if step.sql_mode is not None:
            session.execute("SET SESSION sql_mode=%s", (step.sql_mode,))
        session.execute(_in_context(session, sql, step.context))  # type: ignore[arg-type]
    except pymysql.err.MySQLError as exc:
        code = exc.args[0] if exc.args else "?"
        detail = exc.args[1] if len(exc.args) > 1 else str(exc)
        error = StructureError(
            f"{session.env.name}: {step.phase.replace('_', ' ')} of {step.table!r} failed "
            f"(error {code}: {detail})\n  statement: {elide_values(sql)}",
            hint=_hint(code))
        error.code = code  # type: ignore[attr-defined]
        error.table = step.table  # type: ignore[attr-defined]
        raise error from None
    finally:
        if step.sql_mode is not None:
            with contextlib.suppress(pymysql.err.Error):
                session.execute(f"SET SESSION sql_mode='{APPLY_SQL_MODE}'")
        if step.context:
            with contextlib.suppress(pymysql.err.Error):
                session.execute("SET NAMES utf8mb4, time_zone = '+00:00'")


def _in_context(session: Session, sql: str, context: tuple[tuple[str, str], ...]
                ) -> str | bytes:
    """Set the statement's session variables; return the statement encoded in the
    character_set_client it sets (the server reads the bytes in that charset), or as is
    when it cannot be encoded there (then the session stays in utf8mb4)."""
    values = dict(context)
    charset = values.get("character_set_client")
    data: str | bytes = sql
    if charset:
        try:
            data = sql.encode(_python_codec(charset))
        except (LookupError, UnicodeEncodeError):
            values.pop("character_set_client")
            values.pop("collation_connection", None)
    for name, value in values.items():
        session.execute(f"SET SESSION {name} = %s", (value,))
    return data


def _python_codec(charset: str) -> str:
    if charset.startswith("utf8"):
        return "utf-8"
    from pymysql.charset import charset_by_name
    return str(charset_by_name(charset).encoding)


def _rebuild(session: Session, step: Step, cause: StructureError,
             on_statement: Callable[[str], None] | None) -> None:
    log.warning("%s: the server refused the ALTER (%s); rebuilding the table from a shadow "
                "copy instead", step.table, getattr(cause, "code", "?"))
    rebuild = Step("rebuild_table", step.table, step.fallback[0])
    for sql in step.fallback:
        if on_statement:
            on_statement(sql)
        _execute(session, rebuild, sql)


def _hint(code: object) -> str:
    if code in (1265, 1264, 1406, 1366, 1292, 1138, 1263):
        return ("existing rows do not fit the new definition; fix or delete them on the "
                "target (or change the source), then rerun")
    if code in (1062, 1586):
        return "existing rows hold duplicates for the new unique key; remove them, then rerun"
    if code in (1142, 1044, 1227):
        return "the target account lacks a privilege needed for this change"
    if code in (1845, 1846):
        return ("the server cannot run this ALTER without blocking writes on this table; run "
                "it in a quiet window (the rehearsal had found an online way: please report)")
    return ("fix the cause above and rerun; the statements before this one were applied "
            "(the preflight did not foresee this failure: please report it)")
