"""Key ranges: split a table into chunks that workers copy (and verify) in parallel.

Ranges are on the first column of the table's key (primary key, else a NOT NULL unique
key): `lo <= k < hi`, the first range open below and the last open above, so together
they cover every row exactly once whatever the values. Integer keys are split evenly
between MIN and MAX (no scan); other keys take every Nth value of an index scan as
boundaries. A table without a usable key is one chunk.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from dumpload.data.tables import Column, TableInfo
from dumpload.db import Session
from dumpload.sqltext import quote

INTEGERS = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint", "year"}
SAMPLED = {"char", "varchar", "binary", "varbinary", "date", "datetime", "timestamp",
           "time", "decimal"}
CHUNK_BYTES = 32 * 1024 * 1024   # aim per chunk: big enough that process start-up is noise
MIN_ROWS_TO_SPLIT = 20_000
MAX_CHUNKS = 256


@dataclass(frozen=True)
class Chunk:
    table: str
    index: int
    lo: str | None      # SQL literal, inclusive; None = unbounded
    hi: str | None      # SQL literal, exclusive; None = unbounded
    column: str | None  # the key column the bounds apply to

    @property
    def where(self) -> str:
        if self.column is None:
            return ""
        q = quote(self.column)
        parts = ([f"{q} >= {self.lo}"] if self.lo is not None else []) + (
            [f"{q} < {self.hi}"] if self.hi is not None else [])
        return " AND ".join(parts)

    def describe(self) -> str:
        if self.column is None:
            return "all rows"
        return f"{self.column} in [{self.lo or '-inf'}, {self.hi or '+inf'})"


def wanted_chunks(info: TableInfo, threads: int) -> int:
    """How many chunks a table deserves: by size, at least one per thread when big."""
    if not info.key or info.rows_estimate < MIN_ROWS_TO_SPLIT:
        return 1
    by_size = math.ceil(info.data_bytes / CHUNK_BYTES)
    return max(1, min(MAX_CHUNKS, max(by_size, threads)))


def ranges_from_bounds(table: str, column: str | None, bounds: list[str]) -> list[Chunk]:
    """Chunks between consecutive boundary literals (pure; bounds sorted and distinct)."""
    if column is None or not bounds:
        return [Chunk(table, 0, None, None, column if bounds else None)]
    edges: list[str | None] = [None, *bounds, None]
    return [Chunk(table, i, edges[i], edges[i + 1], column) for i in range(len(edges) - 1)]


def integer_bounds(lo: int, hi: int, n: int) -> list[str]:
    """n-1 evenly spaced interior boundaries in (lo, hi]."""
    span = hi - lo + 1
    n = max(1, min(n, span))
    step = span / n
    out = sorted({lo + math.ceil(step * i) for i in range(1, n)})
    return [str(b) for b in out if lo < b <= hi]


def plan_chunks(session: Session, info: TableInfo, threads: int) -> list[Chunk]:
    """Key ranges for `info` read from `session` (the source)."""
    return plan_ranges(session, info, wanted_chunks(info, threads))


def splittable(info: TableInfo) -> bool:
    """Whether `info` has a key that `plan_ranges` can cut into ranges."""
    return bool(info.key) and info.key_types[0] in INTEGERS | SAMPLED


def plan_ranges(session: Session, info: TableInfo, n: int) -> list[Chunk]:
    """About `n` key ranges for `info` read from `session` (one when it has no usable key)."""
    if n <= 1 or info.key_types[0] not in INTEGERS | SAMPLED:
        return [Chunk(info.name, 0, None, None, None)]
    column = info.key[0]
    q, t = quote(column), quote(info.name)
    if info.key_types[0] in INTEGERS:
        lo, hi = session.query(f"SELECT MIN({q}), MAX({q}) FROM {t}")[0]
        if lo is None:
            return [Chunk(info.name, 0, None, None, None)]
        return ranges_from_bounds(info.name, column, integer_bounds(int(lo), int(hi), n))
    step = max(1, info.rows_estimate // n)
    col = next(c for c in info.columns if c.name == column)
    as_text = q if col.charset or "binary" in col.data_type else f"CAST({q} AS CHAR)"
    rows = session.query(
        f"SELECT HEX(k) FROM (SELECT {as_text} AS k, ROW_NUMBER() OVER (ORDER BY {q}) AS dl_rn "
        f"FROM {t}) AS dl_s WHERE dl_rn % {step} = 0")
    bounds, last = [], None
    for (hexed,) in rows:
        if hexed != last:
            bounds.append(_literal(hexed, col))
            last = hexed
    return ranges_from_bounds(info.name, column, bounds)


def _literal(hexed: str, col: Column) -> str:
    """A boundary value as SQL that compares in the column's own type and collation."""
    if col.charset:  # text: the column's charset and collation, so the index is used
        return f"CONVERT(X'{hexed}' USING {col.charset}) COLLATE {col.collation}"
    if col.data_type == "decimal":
        return f"CAST(X'{hexed}' AS DECIMAL(65,30))"
    return f"X'{hexed}'"
