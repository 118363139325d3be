"""The non-table objects an export carries: views, triggers, procedures, functions, events.

`export_objects` reads them from the schema model (the same inspection `analyze` uses) and
returns plain records for `manifest.json`: kind, name, the CREATE statement (DEFINER =
CURRENT_USER, so any account can load it), and the session it must run in (`sql_mode`,
character set context, time zone). `import_objects` creates, on the target, the ones it
lacks, through `schema.apply_plan` (so they run exactly as `structure` would run them):
routines first, then views (functions before the views that call them), triggers of the
imported tables, events last. Objects that already exist on the target are left as they
are. Reads the source; writes only those CREATE statements.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from dumpload.db import Session
from dumpload.errors import DataError, StructureError

log = logging.getLogger(__name__)

ORDER = ("procedure", "function", "view", "trigger", "event")
PHASE = {"procedure": "create_routine", "function": "create_routine", "view": "create_view",
         "trigger": "create_trigger", "event": "create_event"}


def export_objects(session: Session, tables: Sequence[str], include: Sequence[str],
                   exclude: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Records of the views, routines and events selected by the globs, and of the triggers
    of `tables`, in the order they must be created."""
    from dumpload.config import select_tables
    from dumpload.schema.diff import _view_order
    from dumpload.schema.inspect import load_schema

    schema = load_schema(session)
    names = [*schema.views, *(o.name for o in schema.routines.values()),
             *(o.name for o in schema.events.values())]
    keep = set(select_tables(sorted(set(names)), include, exclude))
    out: list[dict[str, Any]] = []
    for routine in sorted(schema.routines.values(), key=lambda r: (r.kind, r.name)):
        if routine.name in keep:
            out.append(_record(routine.kind.lower(), routine.name, routine.create_sql(),
                               routine.sql_mode, routine.context()))
    for name in _view_order(schema):
        if name in keep:
            out.append(_record("view", name, schema.views[name].create_sql()))
    for trigger in sorted(schema.triggers.values(), key=lambda t: (t.table, t.timing,
                                                                    t.event, t.order)):
        if trigger.table in tables:
            out.append(_record("trigger", trigger.name, trigger.create_sql(),
                               trigger.sql_mode or None, table=trigger.table))
    for event in sorted(schema.events.values(), key=lambda e: e.name):
        if event.name in keep:
            out.append(_record("event", event.name, event.create_sql(), event.sql_mode,
                               event.context()))
    return out


def _record(kind: str, name: str, sql: str, sql_mode: str | None = None,
            context: tuple[tuple[str, str], ...] = (), table: str | None = None
            ) -> dict[str, Any]:
    record: dict[str, Any] = {"kind": kind, "name": name, "sql": sql, "sql_mode": sql_mode,
                              "context": dict(context)}
    if table is not None:
        record["table"] = table
    return record


def schema_sql(objects: Sequence[dict[str, Any]]) -> list[str]:
    """The objects as `mysql`-client input (DELIMITER ;;, each under its sql_mode)."""
    if not objects:
        return []
    lines = ["DELIMITER ;;"]
    for obj in objects:
        if obj.get("sql_mode") is not None:
            lines.append(f"SET SESSION sql_mode = '{obj['sql_mode']}';;")
        for name, value in obj.get("context", {}).items():
            lines.append(f"SET SESSION {name} = '{value}';;")
        lines += [obj["sql"] + ";;", ""]
    return [*lines, "DELIMITER ;", ""]


def existing_objects(session: Session) -> set[tuple[str, str]]:
    """(kind, name) of the views, triggers, routines and events of the session's database."""
    rows = session.query(
        "SELECT 'view', TABLE_NAME FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() "
        "UNION ALL SELECT 'trigger', TRIGGER_NAME FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = DATABASE() "
        "UNION ALL SELECT LOWER(ROUTINE_TYPE), ROUTINE_NAME FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = DATABASE() "
        "UNION ALL SELECT 'event', EVENT_NAME FROM information_schema.EVENTS "
        "WHERE EVENT_SCHEMA = DATABASE()")
    return {(str(kind), str(name)) for kind, name in rows}


def import_objects(session: Session, objects: Sequence[dict[str, Any]],
                   tables: Sequence[str]) -> list[str]:
    """Create the objects the target lacks (triggers only for `tables`); returns them as
    "kind name". Raises DataError naming the object the server refused."""
    from dumpload.schema.apply import apply_plan
    from dumpload.schema.plan import Plan, Step

    have = existing_objects(session)
    wanted = [o for o in sorted(objects, key=lambda o: ORDER.index(o["kind"]))
              if (o["kind"], o["name"]) not in have
              and (o["kind"] != "trigger" or o.get("table") in tables)]
    steps = tuple(Step(PHASE[o["kind"]], o.get("table") or o["name"], o["sql"],
                       o.get("sql_mode"), context=tuple(o.get("context", {}).items()))
                  for o in wanted)
    if not steps:
        return []
    try:
        apply_plan(session, Plan(session.env.database, session.env.database, steps))
    except StructureError as exc:
        raise DataError(f"the data was imported, but an object could not be created: {exc}",
                        hint="create it by hand from schema.sql in the export folder, or "
                        "import the tables it needs too") from None
    created = [f"{o['kind']} {o['name']}" for o in wanted]
    log.info("created from the export: %s", ", ".join(created))
    return created
