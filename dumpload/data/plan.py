"""The data copy's plan: which tables, which strategy each takes, checked before any write.

Reads both catalogs (one query per kind for all tables), refuses a table missing on the
target or whose columns differ (the structure step owns structure) and chooses per FK
group: `in-place` (small: one transaction, `inplace`), `delta` (large, differing key
ranges only, `delta`) or `shadow` (a shadow table and the swap, `engine`). Writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from dumpload.catalog import fk_groups
from dumpload.config import Config, DatabaseConfig, Settings
from dumpload.data import chunks as chunking
from dumpload.data import delta, inplace, shadow
from dumpload.data.shadow import ShadowPlan
from dumpload.data.tables import (
    TableInfo,
    inspect_tables,
    schema_fks,
    trigger_counts,
)
from dumpload.db import Session, connect
from dumpload.errors import DataError, DumpLoadError
from dumpload.sqltext import quote
from dumpload.tools import find_binary, wire_args

log = logging.getLogger(__name__)

IN_PLACE, SHADOW, DELTA = "in-place", "shadow", "delta"   # the strategies a table can take


@dataclass
class TablePlan:
    """What will happen to one table (dry-run output, and the copy's work list)."""

    table: str
    rows_estimate: int
    bytes_estimate: int
    key: tuple[str, ...]
    chunks: list[chunking.Chunk]
    deferred_indexes: int
    foreign_keys: int
    info: TableInfo | None = field(default=None, repr=False)
    mode: str = SHADOW   # IN_PLACE, DELTA or SHADOW (see `choose_modes`)
    # The shadow's definition, from the target's schema model (SHADOW and DELTA tables).
    shadow: ShadowPlan | None = field(default=None, repr=False)

    @property
    def strategy(self) -> str:
        if self.mode == IN_PLACE:
            return ("in place: DELETE + LOAD DATA in one transaction with its FK group "
                    "(no DDL)")
        if self.mode == DELTA:
            return ("delta: key-range checksums on both sides, differing ranges replaced in "
                    f"one transaction; above {int(delta.MAX_FRACTION * 100)} % of the rows, "
                    "a full shadow copy")
        if len(self.chunks) > 1:
            how = f"{len(self.chunks)} key-range chunks on `{self.chunks[0].column}`"
        else:
            how = "one stream" + ("" if self.key else " (no usable key)")
        return (f"{how}; shadow table, {self.deferred_indexes} deferred index(es), "
                f"{self.foreign_keys} FK(s) re-added, atomic rename")

    def shadow_definition(self) -> ShadowPlan:
        if self.shadow is None:
            raise DataError(f"{self.table}: planned without a shadow table (a bug)")
        return self.shadow

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows_estimate": self.rows_estimate,
                "bytes_estimate": self.bytes_estimate, "key": list(self.key),
                "chunks": len(self.chunks), "strategy": self.mode, "how": self.strategy}


# ---------------------------------------------------------------- planning
def check_structures(source: TableInfo, target: TableInfo | None, target_env: str) -> None:
    """Refuse a table whose target columns differ from the source's (exit 6)."""
    hint = "run `dumpload structure` first so the target has the source's structure"
    if target is None or not target.columns:
        raise DataError(f"table {source.name!r} does not exist on {target_env}", hint=hint)
    src = [c.signature for c in source.columns]
    dst = [c.signature for c in target.columns]
    if src != dst:
        diff: list[Any] = [*sorted(set(src) ^ set(dst))] or ["column order"]
        raise DataError(f"table {source.name!r}: columns differ between source and "
                        f"{target_env}: {diff[:4]}", hint=hint)


def plan_tables(src: Session, dst: Session, tables: Sequence[str], threads: int,
                in_place_max: int = inplace.MAX_BYTES, *, full: bool = False
                ) -> list[TablePlan]:
    """Plans for `tables`; raises `DataError` before any write if one cannot be copied.

    The catalog is read with one query per kind for all tables (a schema of thousands of
    tables would otherwise spend its time on round trips)."""
    names = list(tables)
    infos, targets = inspect_tables(src, names), inspect_tables(dst, names)
    for name in names:
        if not infos[name].columns:
            raise DataError(f"table {name!r} does not exist on {src.env.name}",
                            hint="check --tables / replication.data_tables")
        check_structures(infos[name], targets[name], dst.env.name)
    fks, triggers = schema_fks(dst), trigger_counts(dst)
    if in_place_max and target_compressed(dst):
        in_place_max = 0
    # The catalog's sizes may be stale (InnoDB refreshes them lazily): a table that looks
    # small is counted, up to a bound, on both sides before it may go in place.
    looks_small = [t for t in names if max(infos[t].data_bytes, targets[t].data_bytes)
                   <= in_place_max]
    oversized = {t for side in (src, dst) for t, n in
                 bounded_counts(side, looks_small, inplace.MAX_ROWS).items()
                 if n > inplace.MAX_ROWS}
    modes = choose_modes(names, infos, targets, triggers, _edges(dst, fks), in_place_max,
                         oversized)
    if not full:
        linked = {fk.table for fk in fks} | {fk.ref_table for fk in fks}
        for name in names:
            if modes[name] == SHADOW and delta_candidate(infos[name], targets[name], linked,
                                                         triggers):
                modes[name] = DELTA
    # One catalog pass for every table that may need a shadow (a delta may fall back to one).
    splits = shadow.plan_shadows(dst, [n for n in names if modes[n] != IN_PLACE])
    plans = []
    for name in names:
        info = infos[name]
        if modes[name] == IN_PLACE:
            plans.append(TablePlan(name, info.rows_estimate, info.data_bytes, info.key,
                                   [chunking.Chunk(name, 0, None, None, None)], 0,
                                   len(info.fks_out), info, IN_PLACE))
            continue
        split = splits[name]
        plans.append(TablePlan(name, info.rows_estimate, info.data_bytes, info.key,
                               chunking.plan_chunks(src, info, threads),
                               len(split.index_clauses), len(split.fk_clauses), info,
                               modes[name], split))
    return plans


def refresh_shadows(dst: Session, plans: list[TablePlan]) -> None:
    """Read the shadow definitions of `plans` again, in one catalog pass (a plan shown
    before a confirmation may be minutes old; a shadow must not lose a newer index)."""
    splits = shadow.plan_shadows(dst, [p.table for p in plans if p.mode != IN_PLACE])
    for plan in plans:
        plan.shadow = splits.get(plan.table, plan.shadow)


def target_compressed(dst: Session) -> bool:
    """Whether the target's loaders compress their protocol (`compress`, e.g. across a slow
    link). The in-place strategy loads through PyMySQL, which cannot: it is then off, so
    every row still crosses that link compressed."""
    try:
        return bool(wire_args(dst.env, find_binary("client", dst.server.flavor), dst.server))
    except DumpLoadError:
        return False  # the copy itself refuses the setting, naming the reason


def bounded_counts(session: Session, names: list[str], limit: int) -> dict[str, int]:
    """Each table's row count, counted no further than `limit + 1` (a big table costs no
    more than a small one); 200 tables per query."""
    out: dict[str, int] = {}
    for i in range(0, len(names), 200):
        part = names[i:i + 200]
        sql = " UNION ALL ".join(
            f"SELECT %s, COUNT(*) FROM (SELECT 1 FROM {quote(t)} LIMIT {limit + 1}) AS dl_c"
            for t in part)
        out.update({str(r[0]): int(r[1]) for r in session.query(sql, part)})
    return out


def in_place_limit(settings: Settings) -> int:
    """`settings.in_place_max_mb` in bytes."""
    return int(settings.in_place_max_mb * 1024 * 1024)


def choose_modes(names: list[str], source: dict[str, TableInfo], target: dict[str, TableInfo],
                 triggers: dict[str, int], edges: list[tuple[str, str]],
                 in_place_max: int = inplace.MAX_BYTES,
                 oversized: set[str] | None = None) -> dict[str, str]:
    """The strategy of each table (pure): IN_PLACE for whole FK groups whose every table
    is at most `in_place_max` bytes on both sides (and not `oversized`: more rows than
    `inplace.MAX_ROWS`), transactional and without triggers; SHADOW otherwise
    (`in_place_max` 0: always SHADOW)."""
    def small(t: str) -> bool:
        return (in_place_max > 0 and t not in (oversized or set())
                and max(source[t].data_bytes, target[t].data_bytes) <= in_place_max
                and target[t].engine.lower() == "innodb" and not triggers.get(t))
    modes = {}
    for group in fk_groups(names, edges):
        mode = IN_PLACE if all(small(t) for t in group) else SHADOW
        modes.update({t: mode for t in group})
    return modes


def delta_candidate(source: TableInfo, target: TableInfo, linked: set[str],
                    triggers: dict[str, int]) -> bool:
    """Whether a large table may be brought in line by its differing key ranges (pure):
    a key to cut ranges on, rows on the target to keep, transactional, no trigger (it
    would fire on the copied rows) and no FK in or out (checking one would scan the
    whole table and its partners)."""
    return (chunking.splittable(source) and target.rows_estimate > 0
            and target.engine.lower() == "innodb" and not triggers.get(source.name)
            and source.name not in linked)


def _edges(dst: Session, fks: list[shadow.ForeignKey]) -> list[tuple[str, str]]:
    return [(fk.table, fk.ref_table) for fk in fks if fk.ref_schema == dst.env.database]


def plan_copy(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
              tables: Sequence[str], *, threads: int | None = None, full: bool = False,
              lock_target: bool = False) -> list[TablePlan]:
    """What `copy_tables` would do (rows, bytes, chunks, strategy). Writes nothing.

    `full`: no delta copy. `lock_target` implies it: a delta compares before it writes,
    while `--lock-target` promises that nobody writes between the two."""
    threads = threads or config.settings.threads
    with sessions(config, source_env, target_env) as (src, dst):
        return plan_tables(src, dst, tables, threads, in_place_limit(config.settings),
                           full=full or lock_target)


def preflight(config: Config, target_env: DatabaseConfig) -> None:
    """What a copy needs of the target, checked before the run's first change (backup,
    ALTERs): LOAD DATA LOCAL allowed. Raises `DataError` (exit 6) with the fix."""
    with contextlib.closing(connect(target_env, config.settings)) as dst:
        if not int(dst.scalar("SELECT @@GLOBAL.local_infile") or 0):
            raise DataError(
                f"{target_env.name} ({target_env.address}) has local_infile=OFF: the copy "
                "loads rows with LOAD DATA LOCAL; nothing was changed",
                hint="SET GLOBAL local_infile = ON (and local_infile=ON under [mysqld] in "
                "my.cnf), then run again")


@contextmanager
def sessions(config: Config, source_env: DatabaseConfig,
              target_env: DatabaseConfig) -> Iterator[tuple[Session, Session]]:
    src = connect(source_env, config.settings)
    try:
        dst = connect(target_env, config.settings)
        try:
            yield src, dst
        finally:
            dst.close()
    finally:
        src.close()
