"""diff(source, target) -> Plan: a pure function of two models. No I/O.

Per table: foreign keys and checks that go or change are dropped first (own statements);
then one ALTER TABLE carries index drops, column drops, column adds/modifies/moves in the
source's order (fewest moves: columns on a longest increasing subsequence stay put), index
adds, check adds and table options; foreign keys are added last. New tables are created in
foreign-key dependency order, then views (dependency order) and triggers.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dumpload.flavor import Flavor
from dumpload.schema import flavor as fl
from dumpload.schema import safety
from dumpload.schema.model import (
    Column,
    ForeignKey,
    Index,
    Schema,
    Table,
    Trigger,
    View,
    literal,
)
from dumpload.schema.partitions import Partitioning, partition_columns, plan_partitioning
from dumpload.schema.plan import APPLY_SQL_MODE, PHASES, Change, Difference, Plan, Step
from dumpload.schema.routines import Event, Routine, plan_objects
from dumpload.schema.safety import column_change_safety
from dumpload.sqltext import quote


@dataclass
class _Builder:
    flavor: Flavor
    steps: list[Step] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    differences: list[Difference] = field(default_factory=list)
    touched: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    dropped_fks: set[tuple[str, str]] = field(default_factory=set)
    warnings: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def step(self, phase: str, table: str, sql: str, changes: Iterable[tuple[Any, ...]],
             sql_mode: str | None = None, context: tuple[tuple[str, str], ...] = ()) -> None:
        self.steps.append(Step(phase, table, sql, sql_mode, context=context))
        for kind, name, safe, reason in changes:
            self.changes.append(Change(table, kind, name, sql, safe, reason))

    def differ(self, *args: str | None) -> None:
        self.differences.append(Difference(*args))  # type: ignore[arg-type]

    def touch(self, table: str) -> None:
        if table not in self.touched:
            self.touched.append(table)


def diff(source: Schema, target: Schema, *, allow_unsafe: bool = False,
         keep_definer: bool = False) -> Plan:
    """The ordered plan that makes `target` structurally identical to `source`."""
    source, target = fl.comparable(source, target)
    b = _Builder(target.flavor)
    reforeign = _refk_for_modified_parents(source, target)
    inbound = [(tn, fk) for tn, fk in target.inbound if fk.name in reforeign.get(tn, set())]
    readd = [(tn, fk) for tn, fk in inbound if not _ref_type_changes(source, target, fk)]
    for tn, fk in inbound:  # children outside the selection: dropped, re-added if they fit
        fits = (tn, fk) in readd
        b.differ(tn, "foreign key", fk.name, "re-created" if fits else "no longer fits",
                 None, fk.definition())
        b.step("drop_constraint", tn, f"ALTER TABLE {quote(tn)} DROP FOREIGN KEY {quote(fk.name)}",
               [("drop_foreign_key", fk.name, *safety.outside_fk_safety(tn, fk.ref_table,
                                                                          fits))])
        b.dropped_fks.add((tn, fk.name))
    for name in _dependency_order(source, [n for n in source.tables if n not in target.tables]):
        if not _refuse_unsupported(b, source.tables[name], None):
            _create_table(b, source.tables[name], target)
    for name in sorted(set(source.tables) & set(target.tables)):
        if not _refuse_unsupported(b, source.tables[name], target.tables[name]):
            _diff_table(b, source.tables[name], target.tables[name], reforeign.get(name, set()))
    for name in sorted(set(target.tables) - set(source.tables)):
        _drop_table(b, target.tables[name])
    for tn, fk in readd:
        b.step("add_foreign_key", tn, f"ALTER TABLE {quote(tn)} ADD {fk.definition()}",
               [("add_foreign_key", fk.name, True, "re-created as it was")])
    kept_triggers = _diff_triggers(b, source, target, keep_definer)
    _diff_views(b, source, target, keep_definer)
    objects: tuple[tuple[Mapping[str, Routine | Event], Mapping[str, Routine | Event]], ...] = (
        (source.routines, target.routines), (source.events, target.events))
    for source_objects, target_objects in objects:
        differences, object_steps = plan_objects(source_objects, target_objects, keep_definer)
        b.differences += [Difference(*d) for d in differences]
        for s in object_steps:
            b.step(s.phase, s.name, s.sql, s.items, s.sql_mode, s.context)
    _add_rebuild_fallbacks(b, source, target, kept_triggers)
    b.warnings += [*source.ignored, *target.ignored]
    order = {p: i for i, p in enumerate(PHASES)}
    steps = sorted(b.steps, key=lambda s: order[s.phase])  # stable: keeps order within phase
    return Plan(source.database, target.database, tuple(steps), tuple(b.changes),
                tuple(b.differences), tuple(b.touched), tuple(b.created), tuple(b.dropped),
                allow_unsafe, keep_definer, tuple(dict.fromkeys(b.warnings)),
                tuple(dict.fromkeys(b.refused)))


# --- tables -------------------------------------------------------------------------------

def _dependency_order(source: Schema, names: list[str]) -> list[str]:
    """New tables, parents before children (cycles keep name order; FK checks are off)."""
    pending, done, out = sorted(names), set(), []
    wanted = set(names)
    while pending:
        ready = [n for n in pending if all(
            fk.ref_table in done or fk.ref_table not in wanted or fk.ref_table == n
            for fk in source.tables[n].foreign_keys if not fk.ref_schema)]
        ready = ready or pending[:1]
        for n in ready:
            out.append(n)
            done.add(n)
            pending.remove(n)
    return out


def _refuse_unsupported(b: _Builder, s: Table, t: Table | None) -> bool:
    """A table with a clause the model cannot represent: identical → a warning; else its
    changes are refused (never planned without the clause). True when refused/skipped."""
    clauses = tuple(dict.fromkeys([*s.unsupported, *(t.unsupported if t else ())]))
    if not clauses:
        return False
    if s == t:
        b.warnings += [f"{s.name}: {c} (identical on both sides, not compared)"
                       for c in clauses]
        return True
    for clause in clauses:
        b.differ(s.name, "table", s.name, clause, None, None)
        b.refused.append(f"{s.name}: {clause}")
    return True


def _create_table(b: _Builder, table: Table, target: Schema) -> None:
    b.created.append(table.name)
    b.differ(table.name, "table", table.name, "missing in target", "table", None)
    if table.name in target.views:  # a view of that name is in the way; views hold no data
        sql = f"DROP VIEW IF EXISTS {quote(table.name)}"
        b.step("drop_view", table.name, sql,
               [("drop_view", table.name, True, "a view stands where the table goes")])
    # FKs to tables that exist on the target are added after those tables' ALTERs: the
    # columns they reference may only appear there (the server refuses a FK to a missing
    # column even with foreign_key_checks=0).
    later = tuple(fk for fk in table.foreign_keys
                  if not fk.ref_schema and fk.ref_table in target.tables)
    created = replace(table, foreign_keys=tuple(f for f in table.foreign_keys if f not in later))
    b.step("create_table", table.name, created.create_sql(b.flavor),
           [("create_table", table.name, True, "table missing in target")])
    for fk in later:
        b.step("add_foreign_key", table.name,
               f"ALTER TABLE {quote(table.name)} ADD {fk.definition()}",
               [("add_foreign_key", fk.name, True, "foreign key of a new table")])


def _drop_table(b: _Builder, table: Table) -> None:
    b.differ(table.name, "table", table.name, "only in target", None, "table")
    b.touch(table.name)
    b.dropped.append(table.name)
    for fk in table.foreign_keys:  # first, so no change of a parent trips over them (1829)
        b.dropped_fks.add((table.name, fk.name))
        b.step("drop_constraint", table.name,
               f"ALTER TABLE {quote(table.name)} DROP FOREIGN KEY {quote(fk.name)}",
               [("drop_foreign_key", fk.name, True, "its table is dropped")])
    b.step("drop_table", table.name, f"DROP TABLE {quote(table.name)}",
           [("drop_table", table.name, *safety.drop_table_safety(table))])


def _refk_for_modified_parents(source: Schema, target: Schema) -> dict[str, set[str]]:
    """Child table → names of its FKs that reference a column being modified in the parent.

    Such FKs are dropped before and added back after, since the server refuses to change
    a column that a foreign key uses.
    """
    modified: dict[str, set[str]] = {}
    for name in set(source.tables) & set(target.tables):
        s, t = source.tables[name], target.tables[name]
        modified[name] = {c.name for c in s.columns
                          if (tc := t.column(c.name)) is not None and _col_changed(c, tc)}
        # Dropped columns too: a FK that references one must go first (else error 1829).
        modified[name] |= {c.name for c in t.columns if s.column(c.name) is None}
    out: dict[str, set[str]] = {}
    children = [(n, fk) for n, t in target.tables.items() for fk in t.foreign_keys]
    for name, fk in [*children, *target.inbound]:
        if not fk.ref_schema and set(fk.ref_columns) & modified.get(fk.ref_table, set()):
            out.setdefault(name, set()).add(fk.name)
    return out


def _ref_type_changes(source: Schema, target: Schema, fk: object) -> bool:
    """Does a referenced column change type (so a child outside the selection won't fit)?"""
    s, t = source.tables.get(fk.ref_table), target.tables.get(fk.ref_table)  # type: ignore
    if s is None or t is None:
        return True
    for name in fk.ref_columns:  # type: ignore[attr-defined]
        sc, tc = s.column(name), t.column(name)
        if sc is None or tc is None or (sc.type, sc.charset, sc.collation) != (
                tc.type, tc.charset, tc.collation):
            return True
    return False


def _col_changed(a: Column, b: Column) -> bool:
    return a != b


def _diff_table(b: _Builder, s: Table, t: Table, refk: set[str]) -> None:
    clauses: list[str] = []
    items: list[tuple[Any, ...]] = []
    recreated = _recreated_columns(s, t)
    modified = {c.name for c in s.columns if (tc := t.column(c.name)) and tc != c}
    fk_cols_modified = modified | {c.name for c in t.columns if c.name not in s.column_names}
    _diff_constraints_drop(b, s, t, fk_cols_modified, refk)
    index_drops, index_adds = _diff_indexes(b, s, t, recreated)
    for idx in index_drops:
        clauses.append(fl.drop_index_sql(b.flavor, idx))
        items.append(("drop_index", idx.name, True, f"drop {idx.kind.lower()} index"))
    _diff_columns(b, s, t, recreated, clauses, items)
    for idx in index_adds:
        clauses.append(f"ADD {idx.definition(b.flavor)}")
        items.append(("add_index", idx.name, True, f"add {idx.kind.lower()} index"))
    _diff_checks_add(b, s, t, clauses, items)
    _diff_options(b, s, t, clauses, items)
    parts = plan_partitioning(t.name, s.partitioning, t.partitioning,
                              bool(clauses) and _partition_keys_change(s, t))
    for what, kind, src, dst in parts.differences:
        b.differ(s.name, what.split(" ")[0], what.split(" ", 1)[-1] if " " in what else s.name,
                 kind, src, dst)
    for sql, part_items in parts.before:
        b.touch(t.name)
        b.step("alter_table", t.name, sql, part_items)
    if clauses:
        b.touch(t.name)
        sql = f"ALTER TABLE {quote(t.name)}\n  " + ",\n  ".join(clauses)
        b.step("alter_table", t.name, sql, items)
    for sql, part_items in parts.after:
        b.touch(t.name)
        b.step("alter_table", t.name, sql, part_items)
    _diff_constraints_add(b, s, t, fk_cols_modified, refk)


def _partition_keys_change(s: Table, t: Table) -> bool:
    """Would the main ALTER break the target's partitioning: a change to a column it uses,
    or a new unique key that does not hold them all (the server refuses both)?"""
    if t.partitioning is None:
        return False
    used = partition_columns(t.partitioning, t.column_names)
    if any(s.column(c) != t.column(c) for c in used):
        return True
    unique = [i for i in s.indexes if i.kind in ("PRIMARY", "UNIQUE")]
    if not t.partitioning.expression.strip():   # KEY (): partitioned by the primary key
        return [i for i in unique if i.kind == "PRIMARY"] != [
            i for i in t.indexes if i.kind == "PRIMARY"]
    return any(not used <= set(i.columns) for i in unique if i not in t.indexes)


def _partitioning_at_main_alter(s: Table, t: Table) -> Partitioning | None:
    """The target's partitioning when its main ALTER runs (partition steps come after it;
    see `partitions.plan_partitioning`): a rebuild in its place must keep that."""
    if t.partitioning is None or s.partitioning is None:
        return None if s.partitioning is None else t.partitioning
    if s.partitioning.scheme() != t.partitioning.scheme() and _partition_keys_change(s, t):
        return None
    return t.partitioning


def _fk_kept_but_touched(fk_name: str, s: Table, t: Table, cols: set[str],
                         refk: set[str]) -> bool:
    sf = next((f for f in s.foreign_keys if f.name == fk_name), None)
    tf = next((f for f in t.foreign_keys if f.name == fk_name), None)
    if sf is None or tf is None or sf != tf:
        return False
    return bool(set(tf.columns) & cols) or fk_name in refk


def _diff_constraints_drop(b: _Builder, s: Table, t: Table, cols: set[str],
                           refk: set[str]) -> None:
    sfk = {f.name: f for f in s.foreign_keys}
    for fk in t.foreign_keys:
        if fk.name not in sfk:
            b.differ(t.name, "foreign key", fk.name, "only in target", None, fk.definition())
        elif sfk[fk.name] != fk:
            b.differ(t.name, "foreign key", fk.name, "differs", sfk[fk.name].definition(),
                     fk.definition())
        elif not _fk_kept_but_touched(fk.name, s, t, cols, refk):
            continue
        b.touch(t.name)
        b.dropped_fks.add((t.name, fk.name))
        b.step("drop_constraint", t.name,
               f"ALTER TABLE {quote(t.name)} DROP FOREIGN KEY {quote(fk.name)}",
               [("drop_foreign_key", fk.name, True, "foreign key dropped or re-created")])
    schecks = {c.name: c for c in s.checks}
    for chk in t.checks:
        if schecks.get(chk.name) == chk:
            continue
        if chk.name in schecks:
            b.differ(t.name, "check", chk.name, "differs", schecks[chk.name].clause, chk.clause)
        else:
            b.differ(t.name, "check", chk.name, "only in target", None, chk.clause)
        b.touch(t.name)
        b.step("drop_constraint", t.name,
               f"ALTER TABLE {quote(t.name)} {fl.drop_check_sql(b.flavor, chk.name)}",
               [("drop_check", chk.name, True, "check constraint dropped or changed")])


def _diff_constraints_add(b: _Builder, s: Table, t: Table, cols: set[str],
                          refk: set[str]) -> None:
    tfk = {f.name: f for f in t.foreign_keys}
    for fk in s.foreign_keys:
        if fk.name not in tfk:
            b.differ(s.name, "foreign key", fk.name, "missing in target", fk.definition(), None)
        elif tfk[fk.name] == fk and not _fk_kept_but_touched(fk.name, s, t, cols, refk):
            continue
        b.step("add_foreign_key", s.name, _add_fk_sql(b, s, t, fk),
               [("add_foreign_key", fk.name, True, "foreign key added or re-created")])


def _add_fk_sql(b: _Builder, s: Table, t: Table, fk: ForeignKey) -> str:
    """ADD CONSTRAINT, re-adding the FK's index in the same statement when it could be one
    the server created for an earlier FK: MariaDB replaces such an index by a new one named
    after the constraint, so the result would keep the FK's name instead of the index's."""
    index = supporting_index(s, fk)
    clauses = [f"ADD {fk.definition()}"]
    if index is not None and index.kind == "INDEX" and index.name != fk.name and \
            any(i == index for i in t.indexes):
        clauses = [f"DROP INDEX {quote(index.name)}", f"ADD {index.definition(b.flavor)}",
                   *clauses]
    return f"ALTER TABLE {quote(s.name)} " + ", ".join(clauses)


def supporting_index(table: Table, fk: ForeignKey) -> Index | None:
    """The index of `table` the server uses for `fk`: the first whose leading columns are the
    FK's columns (PRIMARY first, then by name: the catalog's order)."""
    n = len(fk.columns)
    for index in table.indexes:
        if index.columns[:n] == fk.columns and index.kind not in ("FULLTEXT", "SPATIAL"):
            return index
    return None


def _diff_checks_add(b: _Builder, s: Table, t: Table, clauses: list[str],
                     items: list[tuple[Any, ...]]) -> None:
    tchecks = {c.name: c for c in t.checks}
    for chk in s.checks:
        if tchecks.get(chk.name) == chk:
            continue
        if chk.name not in tchecks:
            b.differ(s.name, "check", chk.name, "missing in target", chk.clause, None)
        clauses.append(f"ADD {chk.definition()}")
        items.append(("add_check", chk.name, True,
                      "add check constraint (fails if existing rows violate it)"))


def _recreated_columns(s: Table, t: Table) -> set[str]:
    """Generated columns whose definition changes: dropped and added again.

    They hold no data of their own, and servers refuse many in-place changes of them.
    """
    out = set()
    for sc in s.columns:
        tc = t.column(sc.name)
        if tc is not None and tc != sc and (sc.generated or tc.generated):
            out.add(sc.name)
    return out


def _diff_indexes(b: _Builder, s: Table, t: Table,
                  recreated: set[str]) -> tuple[list[Index], list[Index]]:
    sidx = {i.name: i for i in s.indexes}
    tidx = {i.name: i for i in t.indexes}
    drops, adds = [], []
    for name, idx in tidx.items():
        if name not in sidx:
            b.differ(t.name, "index", name, "only in target", None, idx.definition(b.flavor))
            drops.append(idx)
        elif sidx[name] != idx:
            b.differ(t.name, "index", name, "differs", sidx[name].definition(b.flavor),
                     idx.definition(b.flavor))
            drops.append(idx)
            adds.append(sidx[name])
        elif set(idx.columns) & recreated:  # dropping the column would take the index along
            drops.append(idx)
            adds.append(sidx[name])
    for name, idx in sidx.items():
        if name not in tidx:
            b.differ(s.name, "index", name, "missing in target", idx.definition(b.flavor), None)
            adds.append(idx)
    return drops, adds


def _diff_columns(b: _Builder, s: Table, t: Table, recreated: set[str], clauses: list[str],
                  items: list[tuple[Any, ...]]) -> None:
    src_names = s.column_names
    for col in t.columns:
        if col.name not in src_names or col.name in recreated:
            clauses.append(f"DROP COLUMN {quote(col.name)}")
            if col.name in recreated:
                continue
            b.differ(t.name, "column", col.name, "only in target", None,
                     col.definition(b.flavor))
            items.append(("drop_column", col.name, *safety.drop_column_safety(col)))
    moved = _columns_to_move(s, t, recreated)
    for i, col in enumerate(s.columns):
        position = " FIRST" if i == 0 else f" AFTER {quote(s.columns[i - 1].name)}"
        old = t.column(col.name)
        if old is None or col.name in recreated:
            clauses.append(f"ADD COLUMN {col.definition(b.flavor)}{position}")
            _column_added(b, s, t, col, old, items)
        elif old != col or col.name in moved:
            clauses.append(f"MODIFY COLUMN {col.definition(b.flavor)}"
                           f"{position if col.name in moved else ''}")
            _column_modified(b, s, col, old, col.name in moved, position, items)


def _column_added(b: _Builder, s: Table, t: Table, col: Column, old: Column | None,
                  items: list[tuple[Any, ...]]) -> None:
    if old is None:
        b.differ(s.name, "column", col.name, "missing in target", col.definition(b.flavor), None)
        items.append(("add_column", col.name, True, "add column"))
        return
    b.differ(s.name, "column", col.name, "differs", col.definition(b.flavor),
             old.definition(b.flavor))
    items.append(("recreate_column", col.name, *safety.recreate_column_safety(old, col)))


def _column_modified(b: _Builder, s: Table, col: Column, old: Column, moved: bool,
                     position: str, items: list[tuple[Any, ...]]) -> None:
    if old != col:
        b.differ(s.name, "column", col.name, "differs", col.definition(b.flavor),
                 old.definition(b.flavor))
        safe, reason = column_change_safety(old, col, s)
        items.append(("modify_column", col.name, safe, reason))
    if moved:
        b.differ(s.name, "column", col.name, "position", position.strip(), None)
        items.append(("move_column", col.name, True, f"move column{position}"))


def _columns_to_move(s: Table, t: Table, recreated: set[str]) -> set[str]:
    """Kept columns not on a longest run already in source order: the fewest moves."""
    src_pos = {c.name: i for i, c in enumerate(s.columns)}
    kept = [c.name for c in t.columns if c.name in src_pos and c.name not in recreated]
    keep = set(_longest_increasing(kept, src_pos))
    return {n for n in kept if n not in keep}


def _longest_increasing(names: list[str], pos: dict[str, int]) -> list[str]:
    import bisect
    tails: list[int] = []          # positions of the smallest tail for each length
    tail_idx: list[int] = []
    parent = [-1] * len(names)
    for i, n in enumerate(names):
        k = bisect.bisect_left(tails, pos[n])
        if k == len(tails):
            tails.append(pos[n])
            tail_idx.append(i)
        else:
            tails[k], tail_idx[k] = pos[n], i
        parent[i] = tail_idx[k - 1] if k else -1
    out, i = [], tail_idx[-1] if tail_idx else -1
    while i >= 0:
        out.append(names[i])
        i = parent[i]
    return out[::-1]


def _diff_options(b: _Builder, s: Table, t: Table, clauses: list[str],
                  items: list[tuple[Any, ...]]) -> None:
    if (s.engine or "").lower() != (t.engine or "").lower() and s.engine:
        b.differ(s.name, "option", "ENGINE", "differs", s.engine, t.engine)
        clauses.append(f"ENGINE={s.engine}")
        items.append(("table_option", "ENGINE", *safety.engine_change_safety(t.engine,
                                                                              s.engine)))
    if s.collation and s.collation != t.collation:
        b.differ(s.name, "option", "COLLATE", "differs", s.collation, t.collation)
        clauses.append(f"DEFAULT CHARSET={s.charset} COLLATE={s.collation}")
        items.append(("table_option", "CHARSET", True,
                      "table default charset/collation (columns keep theirs)"))
    if s.comment != t.comment:
        b.differ(s.name, "option", "COMMENT", "differs", s.comment, t.comment)
        clauses.append(f"COMMENT={fl_literal(s.comment)}")
        items.append(("table_option", "COMMENT", True, "table comment"))
    sopt, topt = dict(s.options), dict(t.options)
    for key in sorted(set(sopt) | set(topt)):
        if sopt.get(key) != topt.get(key):
            b.differ(s.name, "option", key, "differs", sopt.get(key), topt.get(key))
            clauses.append(f"{key}={sopt.get(key) or fl.reset_option(key)}")
            items.append(("table_option", key, True, f"table option {key}"))


def fl_literal(text: str) -> str:
    from dumpload.schema.model import literal
    return literal(text)


# --- views and triggers -------------------------------------------------------------------

def _view_key(v: View, keep_definer: bool) -> tuple[Any, ...]:
    return (v.definition, v.check_option, v.security, v.algorithm,
            v.definer if keep_definer else "")


def _diff_views(b: _Builder, source: Schema, target: Schema, keep_definer: bool) -> None:
    for name in sorted(set(target.views) - set(source.views)):
        b.differ(name, "view", name, "only in target", None, target.views[name].definition)
        b.step("drop_view", name, f"DROP VIEW IF EXISTS {quote(name)}",
               [("drop_view", name, True, "view only in target (views hold no data)")])
    for name in _view_order(source):
        view = source.views[name]
        old = target.views.get(name)
        if old is not None and _view_key(old, keep_definer) == _view_key(view, keep_definer):
            continue
        if old is None:
            b.differ(name, "view", name, "missing in target", view.definition, None)
        else:
            b.differ(name, "view", name, "differs", view.definition, old.definition)
        b.step("create_view", name, view.create_sql(keep_definer),
               [("create_view", name, True, "create or replace view")])


def _view_order(source: Schema) -> list[str]:
    """Views that read other views come after them."""
    names = sorted(source.views)
    deps = {n: {m for m in names if m != n and quote(m) in source.views[n].definition}
            for n in names}
    out: list[str] = []
    while len(out) < len(names):
        ready = [n for n in names if n not in out and deps[n] <= set(out)]
        out.extend(ready or [next(n for n in names if n not in out)])
    return out


def _trigger_key(tr: Trigger, keep_definer: bool) -> tuple[Any, ...]:
    # The sql_mode a trigger was created under decides how its body behaves (strict or
    # truncating, `||` as OR or as concatenation): a different mode is a different trigger.
    return (tr.table, tr.timing, tr.event, tr.statement, sql_mode_set(tr.sql_mode),
            tr.definer if keep_definer else "")


def trigger_statements(tr: Trigger, keep_definer: bool = False) -> tuple[str, str, str]:
    """CREATE TRIGGER under the trigger's own sql_mode, then back to the DDL mode: the
    server stores the session's mode with the trigger and runs its body under it."""
    return (f"SET SESSION sql_mode = {literal(tr.sql_mode)}", tr.create_sql(keep_definer),
            f"SET SESSION sql_mode = {literal(APPLY_SQL_MODE)}")


def sql_mode_set(mode: str) -> frozenset[str]:
    return frozenset(m.strip().upper() for m in (mode or "").split(",") if m.strip())


def _diff_triggers(b: _Builder, source: Schema, target: Schema, keep_definer: bool) -> list[Any]:
    """A changed trigger re-creates its whole (table, timing, event) group, to keep order.

    Returns the target triggers that stay as they are."""
    def groups(schema: Schema) -> dict[tuple[Any, ...], list[Any]]:
        out: dict[tuple[Any, ...], list[Any]] = {}
        for tr in sorted(schema.triggers.values(), key=lambda x: x.order):
            out.setdefault((tr.table, tr.timing, tr.event), []).append(tr)
        return out
    sg, tg = groups(source), groups(target)
    kept: list[Any] = []
    for key in sorted(set(sg) | set(tg)):
        s_list, t_list = sg.get(key, []), tg.get(key, [])
        if [(x.name, _trigger_key(x, keep_definer)) for x in s_list] == \
                [(x.name, _trigger_key(x, keep_definer)) for x in t_list]:
            kept += t_list
            continue
        _report_triggers(b, s_list, t_list, keep_definer)
        for tr in t_list:
            b.step("drop_trigger", tr.table, f"DROP TRIGGER IF EXISTS {quote(tr.name)}",
                   [("drop_trigger", tr.name, True, "trigger dropped or re-created")])
        for tr in s_list:
            statements = trigger_statements(tr, keep_definer)
            b.steps.append(Step("create_trigger", tr.table, statements[1], kind="trigger",
                                statements=statements))
            b.changes.append(Change(tr.table, "create_trigger", tr.name, statements[1], True,
                                    f"trigger created (sql_mode '{tr.sql_mode}')"))
    return kept


def _report_triggers(b: _Builder, s_list: list[Any], t_list: list[Any], keep_definer: bool) -> None:
    s_map, t_map = {x.name: x for x in s_list}, {x.name: x for x in t_list}
    for name, tr in s_map.items():
        old = t_map.get(name)
        if old is None:
            b.differ(tr.table, "trigger", name, "missing in target", tr.statement, None)
        elif _trigger_key(old, keep_definer) != _trigger_key(tr, keep_definer):
            if old.statement == tr.statement and sql_mode_set(old.sql_mode) != \
                    sql_mode_set(tr.sql_mode):
                b.differ(tr.table, "trigger", name, "sql_mode differs", tr.sql_mode or "''",
                         old.sql_mode or "''")
            else:
                b.differ(tr.table, "trigger", name, "differs", tr.statement, old.statement)
        else:
            b.differ(tr.table, "trigger", name, "position", f"order {tr.order}",
                     f"order {old.order}")
    for name, tr in t_map.items():
        if name not in s_map:
            b.differ(tr.table, "trigger", name, "only in target", None, tr.statement)


# --- rebuild fallback -----------------------------------------------------------------------

def _add_rebuild_fallbacks(b: _Builder, source: Schema, target: Schema,
                           kept_triggers: list[Any]) -> None:
    """Give each ALTER TABLE step a shadow-copy rebuild to use if the server refuses it."""
    for i, step in enumerate(b.steps):
        if step.phase == "alter_table" and step.table in source.tables:
            fallback = rebuild_statements(source.tables[step.table], target, b.flavor,
                                          b.dropped_fks, kept_triggers)
            b.steps[i] = replace(step, fallback=fallback)


def shadow_name(name: str, tag: str) -> str:
    return f"_dl_{tag}_{name}"[:64]


def rebuild_statements(s: Table, target: Schema, flavor: Flavor | str,
                       dropped_fks: set[tuple[str, str]],
                       kept_triggers: list[Any]) -> tuple[str, ...]:
    """Shadow copy + atomic rename, keeping every row of the columns both versions share.

    Foreign keys of other tables that point at this one are dropped before the swap and
    added back after (a rename would carry them to the old copy); triggers that the plan
    keeps are created again (they go with the old copy).
    """
    t = target.tables[s.name]
    new, old = shadow_name(s.name, "new"), shadow_name(s.name, "old")
    flavor = Flavor.of(flavor)
    # MySQL's CHECK names are unique per schema: the shadow gets them after the swap.
    per_table = flavor.check_names_per_table
    shadow = replace(s, foreign_keys=(), checks=s.checks if per_table else (),
                     partitioning=_partitioning_at_main_alter(s, t))
    shared = [c.name for c in s.columns
              if c.generated is None and (tc := t.column(c.name)) is not None
              and tc.generated is None]
    cols = ", ".join(map(quote, shared))
    every = [(tn, fk) for tn, tt in sorted(target.tables.items()) for fk in tt.foreign_keys]
    children = [(tn, fk) for tn, fk in [*every, *target.inbound]
                if fk.ref_table == s.name and not fk.ref_schema and tn != s.name
                and (tn, fk.name) not in dropped_fks]
    out = [f"DROP TABLE IF EXISTS {quote(new)}", shadow.create_sql(flavor, name=new),
           f"INSERT INTO {quote(new)} ({cols}) SELECT {cols} FROM {quote(s.name)}"]
    out += [f"ALTER TABLE {quote(tn)} DROP FOREIGN KEY {quote(fk.name)}" for tn, fk in children]
    out += [f"RENAME TABLE {quote(s.name)} TO {quote(old)}, {quote(new)} TO {quote(s.name)}",
            f"DROP TABLE {quote(old)}"]
    own = [f"ADD {fk.definition()}" for fk in t.foreign_keys
           if (s.name, fk.name) not in dropped_fks]
    if not per_table:
        own += [f"ADD {c.definition()}" for c in s.checks]
    if own:
        out.append(f"ALTER TABLE {quote(s.name)} " + ", ".join(own))
    out += [f"ALTER TABLE {quote(tn)} ADD {fk.definition()}" for tn, fk in children]
    out += [sql for tr in kept_triggers if tr.table == s.name for sql in trigger_statements(tr)]
    return tuple(out)


__all__ = ["diff", "rebuild_statements"]
