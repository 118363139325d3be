"""Small catalog reads shared by several commands (table inventory and sizes)."""

from __future__ import annotations

from dataclasses import dataclass

from dumpload.db import Session


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
    return [TableSize(r[0], r[1], r[2], int(r[3]), int(r[4]), int(r[5])) for r in rows]


def human_bytes(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
