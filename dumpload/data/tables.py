"""What the data copy needs to know about a table, read from `information_schema`.

Read-only: columns (type, charset, nullability, generated, invisible), the key used for
chunking, foreign keys in and out, triggers and the target's `SHOW CREATE TABLE`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from dumpload.catalog import is_work_table
from dumpload.db import Session
from dumpload.sqltext import quote

MAX_NAME = 64


def work_name(prefix: str, table: str) -> str:
    """`_dl_shadow_<table>` (or `_dl_old_`), shortened + hashed to fit 64 characters."""
    name = prefix + table
    if len(name) <= MAX_NAME:
        return name
    digest = hashlib.sha1(table.encode()).hexdigest()[:8]
    return f"{prefix}{table[:MAX_NAME - len(prefix) - 9]}_{digest}"


@dataclass(frozen=True)
class Column:
    name: str
    data_type: str        # lower case: int, varchar, float, bit, geometry, ...
    column_type: str      # full: int(11) unsigned, enum('a','b'), ...
    charset: str | None
    collation: str | None
    nullable: bool
    generated: bool
    invisible: bool

    @property
    def signature(self) -> tuple[str, str, str | None, bool]:
        """What must agree between source and target for bytes to load unchanged."""
        kind = self.column_type if self.data_type in ("enum", "set") else self.data_type
        return (self.name, kind, self.charset, self.generated)


@dataclass(frozen=True)
class ForeignKey:
    name: str
    table: str                 # the referencing (child) table
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str
    ref_columns: tuple[str, ...]


@dataclass
class TableInfo:
    name: str
    columns: list[Column]
    key: tuple[str, ...] = ()           # PK, else a NOT NULL unique key; () = none
    key_types: tuple[str, ...] = ()
    engine: str = "InnoDB"
    rows_estimate: int = 0
    data_bytes: int = 0
    fks_out: list[ForeignKey] = field(default_factory=list)

    @property
    def copied_columns(self) -> list[Column]:
        """Columns whose values are sent: generated ones are recomputed by the target."""
        return [c for c in self.columns if not c.generated]


def _where_tables(names: list[str], column: str = "TABLE_NAME") -> tuple[str, tuple[str, ...]]:
    """The catalog filter for `names`: one name is looked up directly (the server opens
    that table only); several are read with one scan of the schema and filtered here."""
    if len(names) == 1:
        return f" AND {column} = %s", (names[0],)
    return "", ()


def _columns(session: Session, names: list[str]) -> dict[str, list[Column]]:
    where, args = _where_tables(names)
    rows = session.query(
        "SELECT TABLE_NAME, COLUMN_NAME, LOWER(DATA_TYPE), COLUMN_TYPE, CHARACTER_SET_NAME, "
        "COLLATION_NAME, IS_NULLABLE, EXTRA FROM information_schema.COLUMNS "
        f"WHERE TABLE_SCHEMA = DATABASE(){where} ORDER BY TABLE_NAME, ORDINAL_POSITION", args)
    out: dict[str, list[Column]] = {}
    for table, name, dtype, ctype, charset, collation, nullable, extra in rows:
        extra = (extra or "").upper()
        generated = any(word in extra for word in ("VIRTUAL", "STORED GENERATED", "PERSISTENT"))
        out.setdefault(table, []).append(Column(name, dtype, ctype, charset, collation,
                                                nullable == "YES", generated,
                                                "INVISIBLE" in extra))
    return out


def _chunk_keys(session: Session, names: list[str],
                columns: dict[str, list[Column]]) -> dict[str, tuple[str, ...]]:
    where, args = _where_tables(names, "s.TABLE_NAME")
    rows = session.query(
        "SELECT s.TABLE_NAME, s.INDEX_NAME, s.COLUMN_NAME, s.NULLABLE "
        "FROM information_schema.STATISTICS s "
        f"WHERE s.TABLE_SCHEMA = DATABASE(){where} AND s.NON_UNIQUE = 0 "
        "ORDER BY s.TABLE_NAME, s.INDEX_NAME = 'PRIMARY' DESC, s.INDEX_NAME, s.SEQ_IN_INDEX",
        args)
    keys: dict[str, dict[str, list[tuple[str | None, str]]]] = {}
    for table, index, column, nullable in rows:
        keys.setdefault(table, {}).setdefault(index, []).append((column, nullable or ""))
    out: dict[str, tuple[str, ...]] = {}
    for table, indexes in keys.items():
        virtual = {c.name for c in columns.get(table, []) if c.generated}
        for parts in indexes.values():
            if all(col and nullable != "YES" and col not in virtual for col, nullable in parts):
                out[table] = tuple(str(col) for col, _ in parts)
                break
    return out


def fks_out(session: Session, table: str) -> list[ForeignKey]:
    """Foreign keys of `table` (to any table)."""
    return _fks(session, "TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
                "AND REFERENCED_TABLE_NAME IS NOT NULL", (table,))


def fks_into(session: Session, table: str) -> list[ForeignKey]:
    """Foreign keys of other tables (or the table itself) that reference `table`."""
    return _fks(session, "REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME = %s "
                "AND TABLE_SCHEMA = DATABASE()", (table,))


def schema_fks(session: Session) -> list[ForeignKey]:
    """Every FK of the session's database (to any table): one query."""
    return _fks(session, "TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL", ())


def _fks(session: Session, condition: str, args: tuple[str, ...]) -> list[ForeignKey]:
    rows = session.query(
        "SELECT TABLE_NAME, CONSTRAINT_NAME, COLUMN_NAME, REFERENCED_TABLE_SCHEMA, "
        "REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME "
        "FROM information_schema.KEY_COLUMN_USAGE "
        f"WHERE {condition} ORDER BY TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION", args)
    grouped: dict[tuple[str, str], list[tuple[Any, ...]]] = {}
    for row in rows:
        grouped.setdefault((row[0], row[1]), []).append(row)
    return [ForeignKey(name, child, tuple(r[2] for r in parts), parts[0][3], parts[0][4],
                       tuple(r[5] for r in parts)) for (child, name), parts in grouped.items()]


def inspect_table(session: Session, table: str) -> TableInfo:
    """Columns, chunking key, size and outgoing FKs of `table` in the session's database."""
    return inspect_tables(session, [table])[table]


def inspect_tables(session: Session, names: list[str]) -> dict[str, TableInfo]:
    """`inspect_table` for many tables with one catalog query per kind (not per table: a
    schema of thousands of tables would otherwise spend seconds on round trips). A table
    that does not exist gets an info without columns."""
    columns = _columns(session, names)
    keys = _chunk_keys(session, names, columns)
    where, args = _where_tables(names)
    meta = {r[0]: r[1:] for r in session.query(
        "SELECT TABLE_NAME, ENGINE, COALESCE(TABLE_ROWS, 0), COALESCE(DATA_LENGTH, 0) "
        f"FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE(){where}", args)}
    outgoing = fks_out(session, names[0]) if len(names) == 1 else schema_fks(session)
    out_by: dict[str, list[ForeignKey]] = {}
    for fk in outgoing:
        out_by.setdefault(fk.table, []).append(fk)
    infos = {}
    for name in names:
        cols = columns.get(name, [])
        types = {c.name: c.data_type for c in cols}
        key = keys.get(name, ())
        engine, rows, data = meta.get(name, ("InnoDB", 0, 0))
        infos[name] = TableInfo(name, cols, key, tuple(types[k] for k in key), engine or "",
                                int(rows), int(data), out_by.get(name, []))
    return infos


def trigger_counts(session: Session) -> dict[str, int]:
    """How many triggers each table of the session's database has (one query)."""
    rows = session.query(
        "SELECT EVENT_OBJECT_TABLE, COUNT(*) FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = DATABASE() GROUP BY EVENT_OBJECT_TABLE")
    return {r[0]: int(r[1]) for r in rows}


def base_tables(session: Session) -> list[str]:
    """Base tables of the session's database, by name, without dumpload's work tables."""
    rows = session.query(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "AND TABLE_TYPE = 'BASE TABLE' ORDER BY TABLE_NAME")
    return [r[0] for r in rows if not is_work_table(r[0])]


def show_create(session: Session, table: str) -> str:
    return str(session.query(f"SHOW CREATE TABLE {quote(table)}")[0][1])


def triggers_of(session: Session, table: str) -> list[tuple[str, str]]:
    """(name, CREATE TRIGGER statement) of each trigger on `table`."""
    names = session.query(
        "SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE TRIGGER_SCHEMA = DATABASE() "
        "AND EVENT_OBJECT_TABLE = %s ORDER BY ACTION_ORDER", (table,))
    out = []
    for (name,) in names:
        row = session.query_dicts(f"SHOW CREATE TRIGGER {quote(name)}")[0]
        statement = str(row["SQL Original Statement"])
        if session.server.is_mariadb:  # the trigger keeps the sql_mode it was created under
            mode = str(row.get("sql_mode") or "").replace("'", "''")
            statement = f"SET STATEMENT sql_mode = '{mode}' FOR {statement}"
        out.append((name, statement))
    return out
