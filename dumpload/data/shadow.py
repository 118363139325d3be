"""Shadow tables on the target: create (deferred indexes), build indexes, check FKs.

Writes only tables named `_dl_shadow_*` (see `swap.work_name`). A shadow is created
without foreign keys (their names are unique per database) and without triggers; the
swap protocol (`dumpload.swap`) moves both onto it at the instant it replaces the live
table. Rows are checked for FK violations with anti-join queries before the swap, so a
constraint error fails the copy while the old data is still in place.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field

from dumpload.catalog import SHADOW_PREFIX
from dumpload.data.tables import (
    ForeignKey as ForeignKey,  # re-exported: the data engine's annotations name it here
)
from dumpload.data.tables import (
    fks_into,
    fks_out,
    show_create,
    work_name,
)
from dumpload.db import Session
from dumpload.errors import DataError
from dumpload.sqltext import quote

log = logging.getLogger(__name__)

_INDEX_LINE = re.compile(r"^\s*(UNIQUE KEY|KEY|INDEX|UNIQUE INDEX)\s")
_FK_LINE = re.compile(r"^\s*CONSTRAINT\s+`(?:[^`]|``)+`\s+FOREIGN KEY\s")
_KEY_BY_UNIQUE = re.compile(r"PARTITION BY (LINEAR )?KEY\b[^(]*\(\)", re.I)
_AUTO_COL = re.compile(r"^\s*`((?:[^`]|``)+)`\s.*\bAUTO_INCREMENT\b")


@dataclass
class ShadowPlan:
    """The target table's definition split into: create now, add after the load."""

    table: str
    shadow: str
    create_sql: str
    index_clauses: list[str] = field(default_factory=list)
    fk_clauses: list[str] = field(default_factory=list)


def split_create(table: str, create: str, name: str | None = None) -> ShadowPlan:
    """Turn the target's `SHOW CREATE TABLE` into the shadow's CREATE plus deferred parts.

    Secondary B-tree indexes and FKs are deferred; FULLTEXT/SPATIAL indexes and the index
    that carries an AUTO_INCREMENT column (the server requires one) stay in the CREATE, and
    so do unique keys of a table partitioned `BY KEY ()` with no primary key. A partition
    clause (after the closing parenthesis, or in MySQL's `/*!50100 ... */`) is kept as is,
    so the shadow is partitioned exactly like the table. `name`: the shadow's name
    (default: `table`'s work name).
    """
    lines = create.splitlines()
    auto = next((m.group(1).replace("``", "`") for ln in lines if (m := _AUTO_COL.match(ln))),
                None)
    keep, indexes, fks = [], [], []
    # `PARTITION BY KEY ()` without a primary key partitions by the unique key: it stays.
    keep_unique = bool(_KEY_BY_UNIQUE.search(create)) and not any(
        ln.strip().startswith("PRIMARY KEY") for ln in lines)
    for line in lines[1:]:
        body = line.strip().rstrip(",")
        if _FK_LINE.match(line):
            fks.append(body)
        elif _INDEX_LINE.match(line) and not (auto and _first_column(body) == auto) and not (
                keep_unique and body.startswith("UNIQUE")):
            indexes.append(body)
        else:
            keep.append(line)
    shadow = name or work_name(SHADOW_PREFIX, table)
    columns = _fix_commas(keep)
    create_sql = f"CREATE TABLE {quote(shadow)} (\n" + "\n".join(columns)
    return ShadowPlan(table, shadow, create_sql, indexes, fks)


def _first_column(index_clause: str) -> str | None:
    m = re.search(r"\(`((?:[^`]|``)+)`", index_clause)
    return m.group(1).replace("``", "`") if m else None


def _fix_commas(lines: list[str]) -> list[str]:
    """After removing definition lines: every definition but the last ends with a comma."""
    close = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith(")"))
    defs = [ln.rstrip().rstrip(",") for ln in lines[:close]]
    return [d + "," for d in defs[:-1]] + defs[-1:] + lines[close:]


def create_shadow(session: Session, table: str) -> ShadowPlan:
    plan = split_create(table, show_create(session, table))
    session.execute(f"DROP TABLE IF EXISTS {quote(plan.shadow)}")
    session.execute(plan.create_sql)
    return plan


def build_indexes(session: Session, plan: ShadowPlan) -> None:
    """One ALTER adding every deferred index: InnoDB builds them sorted, in one pass."""
    if plan.index_clauses:
        session.execute("SET SESSION unique_checks = 1, foreign_key_checks = 0")
        session.execute(f"ALTER TABLE {quote(plan.shadow)} "
                        + ", ".join("ADD " + c for c in plan.index_clauses))


def _violation_sql(fk: ForeignKey, child: str, parent_schema: str, parent: str) -> str:
    conds = " AND ".join(f"p.{quote(rc)} = c.{quote(cc)}"
                         for cc, rc in zip(fk.columns, fk.ref_columns, strict=True))
    not_null = " AND ".join(f"c.{quote(cc)} IS NOT NULL" for cc in fk.columns)
    return (f"SELECT {', '.join('c.' + quote(cc) for cc in fk.columns)} FROM {quote(child)} c "
            f"WHERE {not_null} AND NOT EXISTS (SELECT 1 FROM {quote(parent_schema)}."
            f"{quote(parent)} p WHERE {conds}) LIMIT 1")


def check_foreign_keys(session: Session, plans: dict[str, ShadowPlan], database: str,
                       fks: list[ForeignKey]) -> None:
    """Refuse the swap if the rows after it would break any FK (old data still in place).

    `fks`: every FK whose child or parent is among `plans`' tables. Each side is read
    from its shadow when that table is being replaced.
    """
    for fk in fks:
        child = plans[fk.table].shadow if fk.table in plans else fk.table
        parent_db, parent = fk.ref_schema, fk.ref_table
        if parent_db == database and parent in plans:
            parent = plans[parent].shadow
        row = session.query(_violation_sql(fk, child, parent_db, parent))
        if row:
            raise DataError(
                f"foreign key {fk.name} of table {fk.table!r} would be violated after the "
                f"copy: {dict(zip(fk.columns, row[0], strict=True))} has no matching row in "
                f"{fk.ref_table!r}; the target keeps its old data",
                hint="copy the referenced table too (add it to --tables / data_tables), or "
                "fix the rows on the source")


def related_fks(session: Session, tables: list[str]) -> list[ForeignKey]:
    """FKs in and out of `tables` (target), each once."""
    seen: dict[tuple[str, str], ForeignKey] = {}
    for table in tables:
        for fk in fks_into(session, table):
            seen[(fk.table, fk.name)] = fk
        for fk in fks_out(session, table):
            seen[(fk.table, fk.name)] = fk
    return list(seen.values())


def drop_shadows(session: Session, plans: list[ShadowPlan]) -> None:
    for p in plans:
        try:
            session.execute(f"DROP TABLE IF EXISTS {quote(p.shadow)}")
        except Exception as exc:  # best effort: the next run cleans up too
            log.warning("could not drop %s: %s", p.shadow, exc)
