"""Shadow tables on the target: planned from the schema model, created without deferred
indexes and foreign keys; indexes built after the load, FKs checked before the swap.

Writes only tables named `_dl_shadow_*` (see `swap.work_name`). A shadow's CREATE is the
live table's model (`schema.Table`, read by `schema.inspect.load_tables` for all shadow
tables of a run in one catalog pass) renamed, rendered by `Table.create_sql`: secondary
B-tree indexes are left out and built after the load (sorted, one ALTER), foreign keys
(their names are unique per database) and triggers too; the swap protocol
(`dumpload.swap`) moves both onto it at the instant it replaces the live table. Rows are
checked for FK violations with anti-join queries before the swap, so a constraint error
fails the copy while the old data is still in place.

`deferred_index` is the one rule of what waits for the load; a restore applies it to the
CREATE text of a dump (`backup.worktables`), which has no live table to inspect.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from dumpload.catalog import SHADOW_PREFIX
from dumpload.data.tables import (
    ForeignKey as ForeignKey,  # re-exported: the data engine's annotations name it here
)
from dumpload.data.tables import (
    fks_into,
    fks_out,
    work_name,
)
from dumpload.db import Session
from dumpload.errors import DataError
from dumpload.flavor import Flavor
from dumpload.schema.inspect import load_tables
from dumpload.schema.model import Table
from dumpload.sqltext import quote

log = logging.getLogger(__name__)


@dataclass
class ShadowPlan:
    """The target table's definition split into: create now, add after the load."""

    table: str
    shadow: str
    create_sql: str
    index_clauses: list[str] = field(default_factory=list)
    fk_clauses: list[str] = field(default_factory=list)
    # The live table's AUTO_INCREMENT counter, given to the shadow: the swap must not move
    # it back below values the application has already handed out (rows deleted since).
    auto_increment: int | None = None


def deferred_index(kind: str, first_column: str | None, auto_column: str | None,
                   key_partitioned: bool) -> bool:
    """Whether an index is added after the load instead of created with the table (pure).

    `kind`: PRIMARY, UNIQUE, INDEX, FULLTEXT or SPATIAL. Secondary B-tree indexes wait;
    the primary key, FULLTEXT and SPATIAL indexes do not, nor the index whose first column
    is the AUTO_INCREMENT column (the server requires one), nor a unique key of a table
    partitioned `BY KEY ()` without a primary key (`key_partitioned`: it partitions by it).
    """
    if kind not in ("UNIQUE", "INDEX"):
        return False
    if auto_column is not None and first_column == auto_column:
        return False
    return not (key_partitioned and kind == "UNIQUE")


def shadow_plan(table: Table, flavor: Flavor | str, name: str | None = None) -> ShadowPlan:
    """`table`'s shadow (pure): its CREATE under `name` (default: its work name) without
    the deferred indexes and the FKs, and those as clauses to add later, in the server's
    order. The partition clause is the model's (or, where the model cannot render it, the
    server's own text), so the shadow is partitioned exactly like the table; a table with
    another clause the model cannot represent is refused (`DataError`)."""
    if table.unsupported and table.partition_text is None:
        raise DataError(f"table {table.name!r}: its shadow table cannot be created exactly "
                        f"like it ({'; '.join(table.unsupported)})",
                        hint="leave the table out of --tables / data_tables, or copy it "
                        "with a dump")
    table = table.in_server_order()  # so the swapped-in table prints as the old one did
    auto = next((c.name for c in table.columns if c.auto_increment), None)
    part = table.partitioning
    by_key = (part is not None and part.method == "KEY" and not part.expression
              and not any(i.kind == "PRIMARY" for i in table.indexes))
    later = [i for i in table.indexes
             if deferred_index(i.kind, i.parts[0].column if i.parts else None, auto, by_key)]
    kept = replace(table, indexes=tuple(i for i in table.indexes if i not in later),
                   foreign_keys=())
    shadow = name or work_name(SHADOW_PREFIX, table.name)
    create = kept.create_sql(flavor, shadow)
    if table.partition_text is not None:  # a clause the model cannot render: the server's
        create = replace(kept, partitioning=None).create_sql(flavor, shadow) + "\n" + \
            table.partition_text
    return ShadowPlan(table.name, shadow, create,
                      [i.definition(flavor) for i in later],
                      [fk.definition() for fk in table.foreign_keys])


def plan_shadows(session: Session, tables: Sequence[str]) -> dict[str, ShadowPlan]:
    """The shadow plan of each of `tables` (the session's database), read in one catalog
    pass; a table that is not there is missing from the result."""
    schema = load_tables(session, tables)
    plans = {name: shadow_plan(t, schema.flavor) for name, t in schema.tables.items()}
    if plans:
        counters = session.query(
            "SELECT TABLE_NAME, AUTO_INCREMENT FROM information_schema.TABLES WHERE "
            "TABLE_SCHEMA = DATABASE() AND AUTO_INCREMENT IS NOT NULL AND TABLE_NAME IN ("
            + ", ".join(["%s"] * len(plans)) + ")", list(plans))
        for name, counter in counters:
            if name in plans:
                plans[name].auto_increment = int(counter)
    return plans


def create_shadow(session: Session, plan: ShadowPlan) -> ShadowPlan:
    session.execute(f"DROP TABLE IF EXISTS {quote(plan.shadow)}")
    session.execute(plan.create_sql)
    if plan.auto_increment:
        session.execute(f"ALTER TABLE {quote(plan.shadow)} AUTO_INCREMENT = {plan.auto_increment}")
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
