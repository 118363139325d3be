"""Small catalog reads shared by several commands (table inventory and sizes)."""

from __future__ import annotations

from dataclasses import dataclass

from dumpload.db import Session

# Tables dumpload itself creates while it works (data shadows, structure rebuilds). They
# are never compared, listed, backed up or copied; a failed run's leftovers are dropped
# by the next run.
SHADOW_PREFIX = "_dl_shadow_"   # data copies load here, then swap in
OLD_PREFIX = "_dl_old_"         # the swapped-out table, dropped right after the swap
REBUILD_PREFIX = "_dl_new_"     # structure rebuilds (shadow copy + rename)
WORK_TABLE_PREFIXES = (SHADOW_PREFIX, OLD_PREFIX, REBUILD_PREFIX)


def is_work_table(name: str) -> bool:
    return name.startswith(WORK_TABLE_PREFIXES)


@dataclass(frozen=True)
class TableSize:
    name: str
    kind: str          # "BASE TABLE" or "VIEW"
    engine: str | None
    rows: int          # the catalog's estimate for InnoDB; exact counts come from COUNT(*)
    data_bytes: int
    index_bytes: int


def table_sizes(session: Session, schema: str | None = None) -> list[TableSize]:
    """Every table and view of `schema` (default: the session's database), by name."""
    rows = session.query(
        "SELECT TABLE_NAME, TABLE_TYPE, ENGINE, COALESCE(TABLE_ROWS, 0), "
        "COALESCE(DATA_LENGTH, 0), COALESCE(INDEX_LENGTH, 0) "
        "FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s ORDER BY TABLE_NAME",
        (schema or session.env.database,))
    return [TableSize(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows
            if not is_work_table(r[0])]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def foreign_key_edges(session: Session, schema: str | None = None) -> list[tuple[str, str]]:
    """(child, parent) table pairs of every foreign key inside `schema`."""
    return [(r[0], r[1]) for r in session.query(
        "SELECT DISTINCT TABLE_NAME, REFERENCED_TABLE_NAME "
        "FROM information_schema.REFERENTIAL_CONSTRAINTS "
        "WHERE CONSTRAINT_SCHEMA = %s AND UNIQUE_CONSTRAINT_SCHEMA = CONSTRAINT_SCHEMA",
        (schema or session.env.database,))]


def fk_groups(tables: list[str], edges: list[tuple[str, str]]) -> list[list[str]]:
    """Tables linked (directly or not) by FKs among themselves, in input order (pure).

    Work on tables of one group must not run in parallel: dropping or renaming a parent
    waits for locks its children's sessions hold.
    """
    parent = {t: t for t in tables}

    def find(t: str) -> str:
        while parent[t] != t:
            parent[t] = parent[parent[t]]
            t = parent[t]
        return t

    for a, b in edges:
        if a in parent and b in parent:
            parent[find(a)] = find(b)
    groups: dict[str, list[str]] = {}
    for t in tables:
        groups.setdefault(find(t), []).append(t)
    return list(groups.values())
