"""Read a schema from the catalog into the model: a handful of whole-schema queries.

One query per object kind over the whole schema, so that inspecting hundreds of tables
takes a few round trips, plus one `SHOW CREATE TABLE` per selected base table for what the
catalog loses (explicit index `USING`, MySQL expression defaults, partition details).
`read_catalog` returns those rows as plain dicts (schema case folders record them);
`build_schema` is pure; `load_tables` reads just some tables (the data copy's shadows).
Reads only; never writes.
"""

from __future__ import annotations

import glob
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from importlib import resources
from typing import Any

import pymysql

from dumpload.catalog import is_work_table
from dumpload.config import is_glob, select_tables
from dumpload.db import Session
from dumpload.flavor import Flavor
from dumpload.schema import flavor as fl
from dumpload.schema.model import Check, Schema, Table, Trigger, View, version3
from dumpload.schema.partitions import partition_clause, partitioning_from_rows
from dumpload.schema.routines import events_from_rows, routines_from_rows
from dumpload.sqltext import quote

log = logging.getLogger(__name__)

Rows = list[dict[str, Any]]
QUERIES = ("tables", "columns", "indexes", "foreign_keys", "checks", "views", "triggers",
           "partitions", "routines", "parameters", "events")
TABLE_QUERIES = ("tables", "columns", "indexes", "foreign_keys", "checks", "partitions")


def query_text(name: str) -> str:
    return resources.files("dumpload.schema").joinpath("sql", f"{name}.sql").read_text()


def load_schema(session: Session, include: Sequence[str] = ("*",),
                exclude: Sequence[str] = ()) -> Schema:
    """The tables, views and triggers of the session's database selected by the globs."""
    rows = read_catalog(session, include, exclude)
    return build_schema(session.env.database, session_flavor(session), session.server.version,
                        rows, include, exclude)


def load_tables(session: Session, names: Sequence[str]) -> Schema:
    """A schema holding only the base tables `names` (no views, triggers, routines): one
    query per table kind, and `SHOW CREATE TABLE` of these tables only. A name that is
    not a base table is missing from `tables`."""
    include = [glob.escape(n) if is_glob(n) else n for n in names]  # names, not patterns
    if not include:
        return Schema(session.env.database, session_flavor(session), session.server.version)
    rows = read_catalog(session, include, queries=TABLE_QUERIES)
    return build_schema(session.env.database, session_flavor(session), session.server.version,
                        rows, include)


def session_flavor(session: Session) -> Flavor:
    return session.server.kind


def read_catalog(session: Session, include: Sequence[str] = ("*",),
                 exclude: Sequence[str] = (), queries: Sequence[str] = QUERIES
                 ) -> dict[str, Rows]:
    """The catalog rows `build_schema` needs, by query name (plus "show_create")."""
    database = session.env.database
    flavor = session_flavor(session)
    rows: dict[str, Rows] = {}
    for name in queries:
        file = f"checks_{flavor.name}" if name == "checks" else name
        rows[name] = session.query_dicts(query_text(file), (database,))
    rows["show_create"] = _show_create_rows(session, rows["tables"], include, exclude)
    # The partition details come from the same SHOW CREATE TABLE text, selected tables only.
    partitioned = {fl.text(fl.get(r, "TABLE_NAME")) for r in rows.get("partitions", [])}
    rows["partition_create"] = [r for r in rows["show_create"] if r["TABLE_NAME"] in partitioned]
    rows["object_create"] = _object_create_rows(session, rows.get("routines", []),
                                                rows.get("events", []))
    return rows


def _show_create_rows(session: Session, tables: Rows, include: Sequence[str],
                      exclude: Sequence[str]) -> Rows:
    """SHOW CREATE TABLE of every selected base table (index USING, MySQL defaults)."""
    names = [fl.text(fl.get(r, "TABLE_NAME")) or "" for r in tables
             if fl.text(fl.get(r, "TABLE_TYPE")) == "BASE TABLE"]
    out = []
    for table in select_tables([n for n in names if not is_work_table(n)], include, exclude):
        try:
            found = session.query(f"SHOW CREATE TABLE {quote(table)}")
        except pymysql.err.ProgrammingError as exc:  # dropped since the catalog was read
            if exc.args and exc.args[0] == 1146:
                continue
            raise
        if found:
            out.append({"TABLE_NAME": table, "CREATE": found[0][1]})
    return out


def _object_create_rows(session: Session, routines: Rows, events: Rows) -> Rows:
    """SHOW CREATE PROCEDURE/FUNCTION/EVENT: the exact text a routine is re-created from.

    Without the privilege to read it the server gives NULL; the model then renders one."""
    wanted = [(fl.text(fl.get(r, "ROUTINE_TYPE")) or "", fl.text(fl.get(r, "ROUTINE_NAME")))
              for r in routines] + [("EVENT", fl.text(fl.get(e, "EVENT_NAME"))) for e in events]
    out = []
    for kind, name in wanted:
        kind = kind.upper()
        try:
            row = session.query(f"SHOW CREATE {kind} {quote(name or '')}")
        except pymysql.err.MySQLError as exc:     # e.g. no privilege on another's routine
            log.warning("cannot read SHOW CREATE %s %s: %s", kind, name, exc)
            continue
        text = row[0][3 if kind == "EVENT" else 2] if row else None
        if text:
            out.append({"KEY": f"{kind} {name}", "CREATE": fl.text(text)})
    return out


def build_schema(database: str, flavor: Flavor | str, version: tuple[int, int, int],
                 rows: Mapping[str, Rows], include: Sequence[str] = ("*",),
                 exclude: Sequence[str] = ()) -> Schema:
    """The model from literal catalog rows (pure; unit tests feed MySQL rows here)."""
    flavor = Flavor.of(flavor, version3(version) if tuple(version) != (0, 0, 0) else None)
    kinds = {fl.text(fl.get(r, "TABLE_NAME")): (fl.text(fl.get(r, "TABLE_TYPE")) or "")
             for r in rows.get("tables", [])}
    names = sorted(k for k in kinds if k and not is_work_table(k))
    selected = set(select_tables(names, include, exclude))
    base = {n for n in selected if kinds[n] == "BASE TABLE"}
    ignored = tuple(f"{n}: {kinds[n].lower()} not compared" for n in sorted(selected)
                    if kinds[n] not in ("BASE TABLE", "VIEW"))
    tables = _tables(database, flavor, rows, base)
    views = {v.name: v for v in _views(database, rows.get("views", [])) if v.name in selected}
    triggers = {t.name: t for t in triggers_from_rows(rows.get("triggers", [])) if t.table in base}
    inbound = _inbound_fks(database, rows.get("foreign_keys", []), base, set(kinds))
    creates = {r["KEY"]: r["CREATE"] for r in rows.get("object_create", [])}
    routines = routines_from_rows(rows.get("routines", []), rows.get("parameters", []), creates)
    events = events_from_rows(rows.get("events", []), creates)
    return Schema(database, flavor, tuple(version), tables, views, triggers,  # type: ignore
                  ignored, inbound, _selected(routines, include, exclude),
                  _selected(events, include, exclude))


def _selected(objects: dict[str, Any], include: Sequence[str],
              exclude: Sequence[str]) -> dict[str, Any]:
    """Routines and events are selected by name with the same globs as tables."""
    keep = set(select_tables(sorted({o.name for o in objects.values()}), include, exclude))
    return {k: o for k, o in objects.items() if o.name in keep}


def _inbound_fks(database: str, rows: Rows, selected: set[str],
                 every: set[str | None]) -> tuple[Any, ...]:
    """FKs of unselected tables that point at selected ones (a parent change must mind them)."""
    outside = _group(rows, {n for n in every if n and n not in selected})
    out = []
    for table, fk_rows in sorted(outside.items()):
        by_fk: dict[str, list[Any]] = {}
        for r in fk_rows:
            by_fk.setdefault(fl.text(fl.get(r, "CONSTRAINT_NAME")) or "", []).append(r)
        for name, rs in sorted(by_fk.items()):
            fk = fl.foreign_key_from_rows(name, rs, database)
            if not fk.ref_schema and fk.ref_table in selected:
                out.append((table, fk))
    return tuple(out)


def _group(rows: Iterable[Mapping[str, Any]], names: set[str]) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for row in rows:
        table = fl.text(fl.get(row, "TABLE_NAME")) or ""
        if table in names:
            out.setdefault(table, []).append(row)
    return out


def _tables(database: str, flavor: Flavor, rows: Mapping[str, Rows],
            names: set[str]) -> dict[str, Table]:
    columns = _group(rows.get("columns", []), names)
    indexes = _group(rows.get("indexes", []), names)
    fks = _group(rows.get("foreign_keys", []), names)
    checks = _group(rows.get("checks", []), names)
    creates = {r["TABLE_NAME"]: r["CREATE"] for r in rows.get("show_create", [])}
    partitions = _group(rows.get("partitions", []), names)
    part_creates = {r["TABLE_NAME"]: r["CREATE"] for r in rows.get("partition_create", [])}
    out = {}
    for row in rows.get("tables", []):
        name = fl.text(fl.get(row, "TABLE_NAME")) or ""
        if name not in names:
            continue
        col_checks = {fl.text(fl.get(c, "CONSTRAINT_NAME")) or "":
                      fl.check_from_row(c, flavor).clause
                      for c in checks.get(name, []) if fl.is_column_check(c)}
        cols = [fl.column_from_row(c, flavor, col_checks) for c in columns.get(name, [])]
        if name in creates and fl.needs_show_create(columns.get(name, []), flavor):
            cols = _apply_show_create(cols, creates[name])
        table_checks = [fl.check_from_row(c, flavor) for c in checks.get(name, [])
                        if not fl.is_column_check(c)]
        using = fl.index_using(creates.get(name, ""))
        out[name] = _table(database, flavor, row, cols, indexes.get(name, []),
                           fks.get(name, []), table_checks, using)
        index_order, check_order = fl.shown_order(creates.get(name, ""))
        out[name] = replace(out[name], index_order=index_order, check_order=check_order)
        if name in partitions or out[name].partitioned:
            out[name] = _with_partitioning(out[name], partitions.get(name, []),
                                           part_creates.get(name))
    return out


def _apply_show_create(cols: list[Any], ddl: str) -> list[Any]:
    exprs = fl.show_create_defaults(ddl)
    return [replace(c, default=fl.normalize_expression(exprs[c.name]))
            if c.name in exprs else c for c in cols]


def _table(database: str, flavor: Flavor, row: Mapping[str, Any], cols: list[Any],
           index_rows: list[Any], fk_rows: list[Any], checks: list[Check],
           using: Mapping[str, str]) -> Table:
    indexes = fl.indexes_from_rows(index_rows, flavor, using)
    indexes = tuple(sorted(indexes, key=lambda i: (i.kind != "PRIMARY", i.name)))
    by_fk: dict[str, list[Any]] = {}
    for r in fk_rows:
        by_fk.setdefault(fl.text(fl.get(r, "CONSTRAINT_NAME")) or "", []).append(r)
    fks = tuple(sorted((fl.foreign_key_from_rows(n, rs, database) for n, rs in by_fk.items()),
                       key=lambda f: f.name))
    collation = fl.collation_name(fl.text(fl.get(row, "TABLE_COLLATION")))
    raw_options = fl.text(fl.get(row, "CREATE_OPTIONS")) or ""
    return Table(
        name=fl.text(fl.get(row, "TABLE_NAME")) or "", columns=tuple(cols), indexes=indexes,
        foreign_keys=fks, checks=tuple(sorted(checks, key=lambda c: c.name)),
        engine=fl.text(fl.get(row, "ENGINE")), charset=fl.charset_of(collation),
        collation=collation, comment=fl.text(fl.get(row, "TABLE_COMMENT")) or "",
        options=fl.parse_create_options(raw_options),
        partitioned="partitioned" in raw_options.lower())


def _with_partitioning(table: Table, rows: list[Any], create_sql: str | None) -> Table:
    model, unsupported = partitioning_from_rows(rows, create_sql)
    if model is None and not unsupported:
        unsupported = ("not supported: partitioning that information_schema.PARTITIONS "
                       "does not describe",)
    text = partition_clause(create_sql) if unsupported and create_sql else None
    return replace(table, partitioning=model, unsupported=table.unsupported + unsupported,
                   partition_text=text)


def _views(database: str, rows: Rows) -> list[View]:
    out = []
    for r in rows:
        out.append(View(
            name=fl.text(fl.get(r, "TABLE_NAME")) or "",
            definition=fl.strip_schema(fl.text(fl.get(r, "VIEW_DEFINITION")) or "", database),
            check_option=(fl.text(fl.get(r, "CHECK_OPTION")) or "NONE").upper(),
            security=(fl.text(fl.get(r, "SECURITY_TYPE")) or "DEFINER").upper(),
            algorithm=(fl.text(fl.get(r, "ALGORITHM")) or "UNDEFINED").upper(),
            definer=fl.text(fl.get(r, "DEFINER")) or ""))
    return out


def triggers_from_rows(rows: Rows) -> list[Trigger]:
    """information_schema.TRIGGERS rows → model triggers (pure)."""
    return [Trigger(
        name=fl.text(fl.get(r, "TRIGGER_NAME")) or "",
        table=fl.text(fl.get(r, "EVENT_OBJECT_TABLE")) or "",
        timing=(fl.text(fl.get(r, "ACTION_TIMING")) or "").upper(),
        event=(fl.text(fl.get(r, "EVENT_MANIPULATION")) or "").upper(),
        statement=fl.text(fl.get(r, "ACTION_STATEMENT")) or "",
        order=int(fl.get(r, "ACTION_ORDER") or 1),
        definer=fl.text(fl.get(r, "DEFINER")) or "",
        sql_mode=fl.text(fl.get(r, "SQL_MODE")) or "") for r in rows]
