"""The data copy's plan: which tables, which strategy each takes, checked before any write.

Reads both catalogs (one query per kind for all tables), refuses a table missing on the
target or whose columns differ (the structure step owns structure) and chooses per FK
group: `in-place` (small: one transaction, `inplace`), `delta` (large, differing key
ranges only, `delta`) or `shadow` (a shadow table and the swap, `engine`), each with the
reason (`choose_strategies`, pure). `sync` asks the same question before its structure step
(`strategies` with `reshaped` tables). Writes nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any

from dumpload.catalog import fk_groups, human_bytes
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
REFUSED = "refused"   # `strategies`: the copy would refuse the table (the reason says why)


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
    mode: str = SHADOW   # IN_PLACE, DELTA or SHADOW (see `choose_strategies`)
    reason: str = ""     # why this strategy (`Choice.reason`)
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
                "chunks": len(self.chunks), "strategy": self.mode, "reason": self.reason,
                "how": self.strategy}


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
                in_place_max: int = inplace.MAX_BYTES, *, no_delta: str = ""
                ) -> list[TablePlan]:
    """Plans for `tables`; raises `DataError` before any write if one cannot be copied.
    `no_delta`: why no table may take `delta` (`--full`, `--lock-target`; '' = may)."""
    names = list(tables)
    facts = read_facts(src, dst, names, in_place_max)
    if facts.refused:
        raise next(iter(facts.refused.values()))
    choices = choose_strategies(facts, names, dst.env.database, no_delta)
    # One catalog pass for every table that may need a shadow (a delta may fall back to one).
    splits = shadow.plan_shadows(dst, [n for n in names if choices[n].mode != IN_PLACE])
    plans = []
    for name in names:
        info, choice = facts.source[name], choices[name]
        if choice.mode == IN_PLACE:
            plans.append(TablePlan(name, info.rows_estimate, info.data_bytes, info.key,
                                   [chunking.Chunk(name, 0, None, None, None)], 0,
                                   len(info.fks_out), info, IN_PLACE, choice.reason))
            continue
        split = splits[name]
        plans.append(TablePlan(name, info.rows_estimate, info.data_bytes, info.key,
                               chunking.plan_chunks(src, info, threads),
                               len(split.index_clauses), len(split.fk_clauses), info,
                               choice.mode, choice.reason, split))
    return plans


def refresh_shadows(dst: Session, plans: list[TablePlan]) -> None:
    """Read the shadow definitions of `plans` again, in one catalog pass (a plan shown
    before a confirmation may be minutes old; a shadow must not lose a newer index)."""
    splits = shadow.plan_shadows(dst, [p.table for p in plans if p.mode != IN_PLACE])
    for plan in plans:
        plan.shadow = splits.get(plan.table, plan.shadow)


def strategies(src: Session, dst: Session, tables: Sequence[str], in_place_max: int, *,
               no_delta: str = "", reshaped: Collection[str] = ()) -> dict[str, Choice]:
    """The strategy each table will take (what `plan_tables` decides), before a structure
    step that creates or changes the `reshaped` tables (see `read_facts`); a table the
    copy would refuse gets REFUSED and the refusal. Writes nothing."""
    facts = read_facts(src, dst, list(tables), in_place_max, reshaped)
    names = [t for t in tables if t not in facts.refused]
    return {**choose_strategies(facts, names, dst.env.database, no_delta),
            **{t: Choice(REFUSED, str(exc)) for t, exc in facts.refused.items()}}


def no_delta_reason(*, full: bool, lock_target: bool) -> str:
    """Why no table may take `delta`: `--full` asks so; `--lock-target` implies it (a
    delta compares before it writes, while `--lock-target` promises that nobody writes
    between the two)."""
    return "--full" if full else "--lock-target" if lock_target else ""


@dataclass
class Facts:
    """What the strategies are chosen from: both sides' tables as the copy will find them."""

    source: dict[str, TableInfo]
    target: dict[str, TableInfo]
    triggers: dict[str, int]                 # on the target, per table
    fks: list[shadow.ForeignKey]             # on the target (to any schema)
    in_place_max: int                        # bytes; 0 = no table goes in place
    oversized: set[str] = field(default_factory=set)   # counted above inplace.MAX_ROWS
    in_place_off: str = ""                   # why `in_place_max` is 0
    refused: dict[str, DataError] = field(default_factory=dict)   # tables not copyable


def read_facts(src: Session, dst: Session, names: list[str], in_place_max: int,
               reshaped: Collection[str] = ()) -> Facts:
    """Both catalogs (one query per kind for all tables: a schema of thousands of tables
    would otherwise spend its time on round trips). `refused` holds why a table cannot be
    copied: missing on the source, or missing or with other columns on the target.

    `reshaped`: tables a structure step will create or change before the copy (sync). The
    copy will find them with the source's shape, triggers and FKs, and the target's rows
    (none for a new table): that is what they are judged on, without the column check."""
    infos, targets = inspect_tables(src, names), inspect_tables(dst, names)
    refused = {}
    for name in names:
        try:
            if not infos[name].columns:
                raise DataError(f"table {name!r} does not exist on {src.env.name}",
                                hint="check --tables / replication.data_tables")
            if name not in reshaped:
                check_structures(infos[name], targets[name], dst.env.name)
        except DataError as exc:
            refused[name] = exc
    names = [t for t in names if t not in refused]
    existing = {t for t in names if targets[t].columns}
    fks, triggers = schema_fks(dst), trigger_counts(dst)
    if reshaped:
        for name in reshaped:
            if name in targets:
                targets[name] = replace(infos[name], rows_estimate=targets[name].rows_estimate,
                                        data_bytes=targets[name].data_bytes)
        src_triggers = trigger_counts(src)
        triggers = {t: n for t, n in triggers.items() if t not in reshaped}
        triggers.update({t: n for t, n in src_triggers.items() if t in reshaped})
        fks = [fk for fk in fks if fk.table not in reshaped] + [
            replace(fk, ref_schema=dst.env.database if fk.ref_schema == src.env.database
                    else fk.ref_schema) for fk in schema_fks(src) if fk.table in reshaped]
    off = ("in_place_max_mb is 0" if not in_place_max else
           "compressed target link" if target_compressed(dst) else "")
    in_place_max = 0 if off else in_place_max
    # The catalog's sizes may be stale (InnoDB refreshes them lazily): a table that looks
    # small is counted, up to a bound, on both sides before it may go in place.
    looks_small = [t for t in names if in_place_max and max(
        infos[t].data_bytes, targets[t].data_bytes) <= in_place_max]
    oversized = {t for side, side_names in ((src, looks_small),
                                            (dst, [t for t in looks_small if t in existing]))
                 for t, n in bounded_counts(side, side_names, inplace.MAX_ROWS).items()
                 if n > inplace.MAX_ROWS}
    return Facts(infos, targets, triggers, fks, in_place_max, oversized, off, refused)


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


# ---------------------------------------------------------------- the decision (pure)
@dataclass(frozen=True)
class Choice:
    """A table's strategy and why (shown by `data --dry-run` and `sync`'s plan)."""

    mode: str          # IN_PLACE, DELTA or SHADOW
    reason: str        # "small", "large (40.0 MiB > 16.0 MiB): ...", "trigger", ...


def choose_strategies(facts: Facts, names: list[str], database: str,
                      no_delta: str = "") -> dict[str, Choice]:
    """The strategy of each table (pure). IN_PLACE for whole FK groups whose every table
    may go in place (`not_in_place`); otherwise DELTA where a table may be compared by key
    ranges (`not_delta`, and no `no_delta` reason such as `--full`); SHADOW for the rest.
    `database`: the target's, whose FKs link tables into groups."""
    edges = [(fk.table, fk.ref_table) for fk in facts.fks if fk.ref_schema == database]
    linked = {fk.table for fk in facts.fks} | {fk.ref_table for fk in facts.fks}
    out: dict[str, Choice] = {}
    for group in fk_groups(names, edges):
        why = {t: not_in_place(facts, t) for t in group}
        blocked = [t for t in group if why[t]]
        for t in group:
            if not blocked:
                out[t] = Choice(IN_PLACE, "small" if len(group) == 1 else
                                f"small, with its FK group ({len(group)} tables)")
                continue
            reason = why[t] or f"FK group with {blocked[0]}: {why[blocked[0]]}"
            veto = no_delta or not_delta(facts.source[t], facts.target[t], linked,
                                         facts.triggers)
            out[t] = (Choice(DELTA, f"{reason}: delta by key ranges") if not veto else
                      Choice(SHADOW, reason if veto == reason else f"{reason}; no delta: {veto}"))
    return out


def not_in_place(facts: Facts, table: str) -> str:
    """Why `table` alone may not be replaced inside one transaction ('' = it may): too
    big on either side, not transactional, or a trigger (it would fire on copied rows)."""
    size = max(facts.source[table].data_bytes, facts.target[table].data_bytes)
    engine = facts.target[table].engine
    if not facts.in_place_max:
        return f"in-place off: {facts.in_place_off or 'in_place_max_mb is 0'}"
    if size > facts.in_place_max:
        return f"large ({human_bytes(size)} > {human_bytes(facts.in_place_max)})"
    if table in facts.oversized:
        return f"large (over {inplace.MAX_ROWS:,} rows)"
    if engine.lower() != "innodb":
        return f"{engine or 'unknown'} engine"
    return "trigger" if facts.triggers.get(table) else ""


def not_delta(source: TableInfo, target: TableInfo, linked: set[str],
              triggers: dict[str, int]) -> str:
    """Why a table may not be brought in line by its differing key ranges ('' = it may):
    it needs a key to cut ranges on, rows on the target to keep, a transactional engine,
    no trigger (it would fire on the copied rows) and no FK in or out (checking one would
    scan the whole table and its partners)."""
    if not chunking.splittable(source):
        return "no key to cut ranges on"
    if target.rows_estimate <= 0:
        return "empty target"
    if target.engine.lower() != "innodb":
        return f"{target.engine or 'unknown'} engine"
    if triggers.get(source.name):
        return "trigger"
    return "FK" if source.name in linked else ""


def plan_copy(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
              tables: Sequence[str], *, threads: int | None = None, full: bool = False,
              lock_target: bool = False) -> list[TablePlan]:
    """What `copy_tables` would do (rows, bytes, chunks, strategy). Writes nothing.

    `full`: no delta copy. `lock_target` implies it: a delta compares before it writes,
    while `--lock-target` promises that nobody writes between the two."""
    threads = threads or config.settings.threads
    with sessions(config, source_env, target_env) as (src, dst):
        return plan_tables(src, dst, tables, threads, in_place_limit(config.settings),
                           no_delta=no_delta_reason(full=full, lock_target=lock_target))


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
