"""A minimal stand-in for the swap protocol (`dumpload.swap`), with its signatures.

Restore and rollback put work tables in place through `swap_group` only; this module is
to be replaced by `dumpload.swap` (crash-safe states, bounded metadata-lock waits, FKs and
triggers present at the instant of visibility). Until then: one `RENAME TABLE` moves every
live table of the group aside and every work table in (atomic: readers see all old or all
new tables), then the old tables are dropped and the group's FKs and triggers created;
children outside the group that referenced a swapped table are re-pointed at it. Touches
only the tables of the group, their `_dl_old_*` copies and the children's FKs.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from dumpload.catalog import OLD_PREFIX, SHADOW_PREFIX
from dumpload.config import DatabaseConfig, Settings
from dumpload.data.shadow import _fk_clause, cleanup_leftovers
from dumpload.data.tables import fks_into, triggers_of
from dumpload.data.tables import work_name as _prefixed_name
from dumpload.db import session
from dumpload.sqltext import quote

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Replacement:
    table: str                                   # the live name
    work: str | None                             # complete work table; None = drop the table
    foreign_keys: tuple[str, ...] | None = None  # FK clauses the new table carries
    triggers: tuple[str, ...] | None = None      # CREATE TRIGGER statements for it


def work_name(table: str) -> str:
    return _prefixed_name(SHADOW_PREFIX, table)


def settle_leftovers(db: DatabaseConfig, settings: Settings) -> list[str]:
    """Drop work tables an interrupted run left (the swap itself is one atomic RENAME)."""
    with session(db, settings) as s:
        return cleanup_leftovers(s)


def swap_group(db: DatabaseConfig, settings: Settings, group: Sequence[Replacement]) -> None:
    """Put every work table of `group` in place of its live table (see the module doc)."""
    with session(db, settings) as s:
        live = {r[0] for r in s.query(
            "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE()")}
        names = {r.table for r in group}
        present = [r for r in group if r.table in live]
        children = {(fk.table, fk.name): _fk_clause(s, fk.table, fk.name)
                    for r in present for fk in fks_into(s, r.table) if fk.table not in names}
        kept = {r.table: [stmt for _, stmt in triggers_of(s, r.table)]
                for r in present if r.triggers is None}
        s.execute("SET SESSION foreign_key_checks = 0")
        pairs = []
        for r in present:
            old = _prefixed_name(OLD_PREFIX, r.table)
            s.execute(f"DROP TABLE IF EXISTS {quote(old)}")
            pairs.append(f"{quote(r.table)} TO {quote(old)}")
        pairs += [f"{quote(r.work)} TO {quote(r.table)}" for r in group if r.work]
        if pairs:
            s.execute("RENAME TABLE " + ", ".join(pairs))
        for r in present:
            s.execute(f"DROP TABLE {quote(_prefixed_name(OLD_PREFIX, r.table))}")
        for r in group:
            if r.work and r.foreign_keys:
                s.execute(f"ALTER TABLE {quote(r.table)} "
                          + ", ".join("ADD " + c for c in r.foreign_keys))
            for stmt in (r.triggers if r.triggers is not None else kept.get(r.table, [])):
                if r.work:
                    s.execute(stmt)
        for (child, name), clause in children.items():
            if any(r.table == child and r.work is None for r in group):
                continue
            s.execute(f"ALTER TABLE {quote(child)} DROP FOREIGN KEY {quote(name)}")
            s.execute(f"ALTER TABLE {quote(child)} ADD {clause}")
        s.execute("SET SESSION foreign_key_checks = 1")
    log.info("swapped in %s", ", ".join(sorted(names)))
