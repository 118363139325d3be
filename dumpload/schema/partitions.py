"""Table partitioning: the model, read from the catalog, and the cheapest change between two.

Invariants:
- A `Partitioning` is built from `information_schema.PARTITIONS` rows; the parts the catalog
  loses (a LIST `DEFAULT` partition, KEY `ALGORITHM=`) are read from `SHOW CREATE TABLE`.
  `check_clause` then renders the model and compares it with the server's own clause
  (normalised): whatever differs (DATA DIRECTORY, per-partition engines, MariaDB's
  SYSTEM_TIME partitioning, ...) is returned as "not supported: <clause>", and the caller
  refuses that table's changes instead of silently dropping the clause.
- `plan_partitioning(source, target)` is pure: it returns statements that keep rows
  (`ADD`/`REORGANIZE`/`COALESCE PARTITION`, `PARTITION BY`, `REMOVE PARTITIONING`) and
  uses `DROP PARTITION` (unsafe: its rows are lost) only where the source has no partition
  for a target partition's rows at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from dumpload.sqltext import quote

Row = Mapping[str, Any]
_METHODS = ("RANGE", "LIST", "HASH", "KEY", "RANGE COLUMNS", "LIST COLUMNS")


@dataclass(frozen=True)
class Partition:
    name: str
    values: str | None = None       # RANGE bound / LIST values as the catalog prints them;
    #                                 "MAXVALUE"; "DEFAULT" (LIST); None for HASH/KEY
    comment: str = ""
    subpartitions: tuple[str, ...] = ()

    def value_items(self) -> frozenset[str]:
        """LIST values as a set (the order of a VALUES IN list carries no meaning)."""
        return frozenset(split_items(self.values or ""))

    def key(self, method: str) -> tuple[Any, ...]:
        values = self.value_items() if method.startswith("LIST") else self.values
        return (self.name, values, self.comment, self.subpartitions)


@dataclass(frozen=True)
class Partitioning:
    method: str                     # one of _METHODS
    expression: str                 # expression, or column list for KEY/COLUMNS ('' = KEY ())
    partitions: tuple[Partition, ...] = ()
    linear: bool = False
    algorithm: int | None = None    # KEY ALGORITHM=
    sub_method: str | None = None   # HASH or KEY
    sub_expression: str | None = None
    sub_linear: bool = False
    sub_algorithm: int | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(p.name for p in self.partitions)

    def scheme(self) -> tuple[Any, ...]:
        """What decides where a row goes, apart from the partition list itself."""
        return (self.method, self.linear, self.algorithm, _norm_expr(self.expression),
                self.sub_method, self.sub_linear, self.sub_algorithm,
                _norm_expr(self.sub_expression or ""))

    def key(self) -> tuple[Any, ...]:
        parts = [p.key(self.method) for p in self.partitions]
        # The order of LIST partitions decides nothing: compare them as a set.
        return (self.scheme(), frozenset(parts) if self.method.startswith("LIST")
                else tuple(parts))

    def head_sql(self, explicit: bool = False) -> str:
        text = f"PARTITION BY {_method_sql(self.method, self.linear, self.algorithm)}"
        text += f"({self.expression})" if "COLUMNS" in self.method else f" ({self.expression})"
        if self.sub_method:
            text += (f"\nSUBPARTITION BY "
                     f"{_method_sql(self.sub_method, self.sub_linear, self.sub_algorithm)}"
                     f" ({self.sub_expression or ''})")
            if self._default_subpartitions() and not explicit:
                text += f"\nSUBPARTITIONS {len(self.partitions[0].subpartitions)}"
        return text

    def clause(self, explicit: bool = False) -> str:
        """The whole `PARTITION BY ...` clause, as CREATE TABLE and ALTER TABLE take it.

        Default names (p0, p1, ...; p0sp0, ...) are left to the server (`PARTITIONS n`)
        unless `explicit`, which lists every partition and subpartition."""
        if self.method in ("HASH", "KEY") and self._default_names() and not explicit:
            return f"{self.head_sql()}\nPARTITIONS {len(self.partitions)}"
        return (self.head_sql(explicit) + "\n(" + ",\n ".join(
            self.partition_sql(p, explicit) for p in self.partitions) + ")")

    def partition_sql(self, part: Partition, explicit: bool = False) -> str:
        text = f"PARTITION {quote(part.name)}"
        if self.method.startswith("RANGE"):
            bound = part.values or "MAXVALUE"
            text += (" VALUES LESS THAN MAXVALUE" if bound.upper() == "MAXVALUE"
                     and "COLUMNS" not in self.method else f" VALUES LESS THAN ({bound})")
        elif self.method.startswith("LIST"):
            text += " DEFAULT" if part.values == "DEFAULT" else f" VALUES IN ({part.values})"
        if part.comment:
            text += " COMMENT = '" + part.comment.replace("\\", "\\\\").replace("'", "''") + "'"
        if part.subpartitions and (explicit or not self._default_subpartitions()):
            text += " (" + ", ".join(f"SUBPARTITION {quote(s)}"
                                     for s in part.subpartitions) + ")"
        return text

    def _default_names(self) -> bool:
        return all(p.name == f"p{i}" and not p.comment and not p.subpartitions
                   for i, p in enumerate(self.partitions))

    def _default_subpartitions(self) -> bool:
        counts = {len(p.subpartitions) for p in self.partitions}
        return len(counts) == 1 and all(
            s == f"{p.name}sp{i}" for p in self.partitions for i, s in enumerate(p.subpartitions))


def _method_sql(method: str, linear: bool, algorithm: int | None) -> str:
    text = ("LINEAR " if linear else "") + method
    if method == "KEY" and algorithm:
        text += f" ALGORITHM={algorithm}"
    return text


def _norm_expr(expr: str) -> str:
    return re.sub(r"\s+", "", expr or "").lower()


# --- parsing helpers -------------------------------------------------------------------------

def split_items(text: str) -> list[str]:
    """Top-level comma-separated items, quotes and parentheses respected; spaces outside
    quotes dropped."""
    items, buf, depth, quote_char, i = [], [], 0, "", 0
    while i < len(text):
        ch = text[i]
        if quote_char:
            buf.append(ch)
            if ch == "\\" and i + 1 < len(text):
                buf.append(text[i + 1])
                i += 1
            elif ch == quote_char:
                quote_char = ""
        elif ch in "'\"":
            quote_char = ch
            buf.append(ch)
        elif ch == "(":
            depth += 1
            buf.append(ch)
        elif ch == ")":
            depth -= 1
            buf.append(ch)
        elif ch == "," and depth == 0:
            items.append("".join(buf).strip())
            buf = []
        elif not ch.isspace():
            buf.append(ch)
        i += 1
    if "".join(buf).strip():
        items.append("".join(buf).strip())
    return items


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _get(row: Row, key: str) -> Any:
    return row[key] if key in row else row.get(key.lower())


def _split_method(raw: str | None) -> tuple[str | None, bool]:
    text = (raw or "").upper().strip()
    linear = text.startswith("LINEAR ")
    return (text[7:] if linear else text) or None, linear


def partitioning_from_rows(rows: Sequence[Row], create_sql: str | None = None
                           ) -> tuple[Partitioning | None, tuple[str, ...]]:
    """PARTITIONS rows of one table (+ its SHOW CREATE TABLE) → (model, unsupported clauses).

    Rows with PARTITION_NAME NULL (an unpartitioned table) give (None, ()).
    """
    rows = [r for r in rows if _get(r, "PARTITION_NAME") is not None]
    if not rows:
        return None, ()
    rows = sorted(rows, key=lambda r: (int(_get(r, "PARTITION_ORDINAL_POSITION") or 0),
                                       int(_get(r, "SUBPARTITION_ORDINAL_POSITION") or 0)))
    method, linear = _split_method(_text(_get(rows[0], "PARTITION_METHOD")))
    if method not in _METHODS:
        return None, (f"not supported: PARTITION BY {method}",)
    sub_method, sub_linear = _split_method(_text(_get(rows[0], "SUBPARTITION_METHOD")))
    parts: dict[str, list[Row]] = {}
    for r in rows:
        parts.setdefault(_text(_get(r, "PARTITION_NAME")) or "", []).append(r)
    defaults = _default_partitions(create_sql or "")
    partitions = tuple(_partition(name, prs, method, defaults) for name, prs in parts.items())
    algorithms = _key_algorithms(create_sql or "")
    model = Partitioning(
        method=method, linear=linear,
        expression=(_text(_get(rows[0], "PARTITION_EXPRESSION")) or "").strip(),
        partitions=partitions, algorithm=algorithms[0] if method == "KEY" else None,
        sub_method=sub_method, sub_linear=sub_linear,
        sub_expression=(_text(_get(rows[0], "SUBPARTITION_EXPRESSION")) or "").strip()
        if sub_method else None,
        sub_algorithm=algorithms[1] if sub_method == "KEY" else None)
    unsupported = check_clause(model, create_sql) if create_sql else ()
    return model, unsupported


def _partition(name: str, rows: list[Row], method: str, defaults: set[str]) -> Partition:
    first = rows[0]
    values = _text(_get(first, "PARTITION_DESCRIPTION"))
    if method.startswith("LIST") and name in defaults:
        values = "DEFAULT"      # the catalog says "0" (MariaDB) for a DEFAULT partition
    subs = tuple(_text(_get(r, "SUBPARTITION_NAME")) or "" for r in rows
                 if _get(r, "SUBPARTITION_NAME") is not None)
    return Partition(name=name, values=values if method not in ("HASH", "KEY") else None,
                     comment=_text(_get(first, "PARTITION_COMMENT")) or "",
                     subpartitions=subs)


def partition_clause(create_sql: str) -> str | None:
    """The `PARTITION BY ...` clause of a SHOW CREATE TABLE text (comment wrapper removed)."""
    start = _after_body(create_sql)
    if start is None:
        return None
    pos = _find_unquoted(create_sql, re.compile(r"PARTITION\s+BY\b", re.I), start)
    if pos is None:
        return None
    text = create_sql[pos:].strip()
    return re.sub(r"\s*\*/\s*$", "", text)


def _after_body(sql: str) -> int | None:
    """Index just past the closing parenthesis of the column list."""
    depth, quote_char, i = 0, "", sql.find("(")
    if i < 0:
        return None
    while i < len(sql):
        ch = sql[i]
        if quote_char:
            if ch == "\\" and quote_char != "`":
                i += 1
            elif ch == quote_char:
                quote_char = ""
        elif ch in "'\"`":
            quote_char = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    return None


def _find_unquoted(sql: str, pattern: re.Pattern[str], start: int) -> int | None:
    quote_char, i = "", start
    while i < len(sql):
        ch = sql[i]
        if quote_char:
            if ch == "\\" and quote_char != "`":
                i += 1
            elif ch == quote_char:
                quote_char = ""
        elif ch in "'\"`":
            quote_char = ch
        elif pattern.match(sql, i):
            return i
        i += 1
    return None


def _default_partitions(create_sql: str) -> set[str]:
    clause = partition_clause(create_sql) or ""
    return {m.group(1) or m.group(2) for m in re.finditer(
        r"PARTITION\s+(?:`((?:[^`]|``)+)`|(\w+))\s+DEFAULT\b", clause, re.I)}


def _key_algorithms(create_sql: str) -> tuple[int | None, int | None]:
    clause = _strip_comments(partition_clause(create_sql) or "")
    top = re.search(r"PARTITION\s+BY\s+(?:LINEAR\s+)?KEY\s+ALGORITHM\s*=\s*(\d)", clause, re.I)
    sub = re.search(r"SUBPARTITION\s+BY\s+(?:LINEAR\s+)?KEY\s+ALGORITHM\s*=\s*(\d)", clause,
                    re.I)
    return (int(top.group(1)) if top else None, int(sub.group(1)) if sub else None)


def _strip_comments(text: str) -> str:
    return re.sub(r"/\*!\d*|\*/", " ", text)


def normalize_clause(text: str) -> str:
    """A partition clause reduced for comparison: no version comments, backticks, per-
    partition `ENGINE = x`, case or spacing differences outside string literals."""
    text = _strip_comments(text)
    text = re.sub(r"\s*(STORAGE\s+)?ENGINE\s*=\s*\w+", "", text, flags=re.I)
    out, quote_char, i = [], "", 0
    while i < len(text):
        ch = text[i]
        if quote_char:
            out.append(ch)
            if ch == "\\" and i + 1 < len(text):
                out.append(text[i + 1])
                i += 1
            elif ch == quote_char:
                quote_char = ""
        elif ch == "'":
            quote_char = ch
            out.append(ch)
        elif ch != "`":
            out.append(ch.lower())
        i += 1
    flat = re.sub(r"\s+", " ", "".join(out)).strip()
    return re.sub(r"\s*([(),=])\s*", r"\1", flat)


def check_clause(model: Partitioning, create_sql: str) -> tuple[str, ...]:
    """Skeema's self-check: the model's clause must equal the server's; else what differs."""
    shown = partition_clause(create_sql)
    if shown is None:
        return ("not supported: a partitioned table whose SHOW CREATE TABLE has no "
                "PARTITION BY clause",)
    theirs = normalize_clause(shown)
    # The server prints default-named partitions either way (`PARTITIONS n` or a list).
    if any(_same_clause(normalize_clause(model.clause(explicit)), theirs, model)
           for explicit in (False, True)):
        return ()
    mine_parts = {normalize_clause(p) for p in _pieces(model.clause())}
    extra = [p for p in _pieces(_strip_comments(shown)) if normalize_clause(p) not in mine_parts]
    detail = " ".join((extra[0] if extra else shown).split())
    detail = re.sub(r"\s*(STORAGE\s+)?ENGINE\s*=\s*\w+", "", detail, flags=re.I)
    return (f"not supported: {detail[:200]}",)


def _pieces(clause: str) -> list[str]:
    """The head and each partition definition of a clause (for naming what differs)."""
    out = []
    for piece in re.split(r"[(,]\s*(?=(?:SUB)?PARTITION\s)", clause, flags=re.I):
        piece = piece.strip()
        while piece.endswith(")") and piece.count(")") > piece.count("("):
            piece = piece[:-1].rstrip()   # the list's closing parenthesis
        if piece:
            out.append(piece)
    return out


def _same_clause(mine: str, theirs: str, model: Partitioning) -> bool:
    if mine == theirs:
        return True
    if not model.method.startswith("LIST"):
        return False
    # LIST values may be listed in another order by the server: compare partition by partition.
    def canon(text: str) -> list[Any]:
        return [sorted(split_items(m.group(1))) if m else p for p in split_items(text)
                for m in [re.search(r"valuesin\((.*)\)$", p.replace(" ", ""))]]
    return canon(mine) == canon(theirs)


# --- planning ------------------------------------------------------------------------------

@dataclass
class PartitionChanges:
    """Statements around a table's main ALTER, with the changes and differences they carry.

    `items`: (kind, name, safe, reason) per statement, as `diff._Builder.step` takes them.
    """

    before: list[tuple[str, list[tuple[Any, ...]]]] = field(default_factory=list)
    after: list[tuple[str, list[tuple[Any, ...]]]] = field(default_factory=list)
    differences: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)


def same_partitioning(a: Partitioning | None, b: Partitioning | None) -> bool:
    if a is None or b is None:
        return a is b
    return a.key() == b.key()


def plan_partitioning(table: str, source: Partitioning | None, target: Partitioning | None,
                      structural_change: bool) -> PartitionChanges:
    """The statements that turn the target's partitioning into the source's.

    `structural_change`: the table's main ALTER changes columns of the old partitioning
    expression or a primary/unique key; then an old scheme that is going away is removed
    before that ALTER (the server refuses keys that do not cover the partitioning columns).
    """
    out = PartitionChanges()
    if same_partitioning(source, target):
        return out
    alter = f"ALTER TABLE {quote(table)} "
    if source is None:
        assert target is not None
        out.differences.append(("partitioning", "only in target", None, target.head_sql()))
        out.before.append((alter + "REMOVE PARTITIONING", [(
            "remove_partitioning", table, True, "rows are kept in one unpartitioned table")]))
        return out
    if target is None:
        out.differences.append(("partitioning", "missing in target", source.head_sql(), None))
        out.after.append(_partition_by(table, source, "partition the table"))
        return out
    _describe(out, source, target)
    if source.scheme() != target.scheme():
        if structural_change:
            out.before.append((alter + "REMOVE PARTITIONING", [(
                "remove_partitioning", table, True,
                "old partitioning removed before the key/column change")]))
        out.after.append(_partition_by(table, source, "partitioning scheme changes"))
        return out
    steps = _same_scheme_steps(table, source, target)
    out.after.extend(steps if steps is not None else
                     [_partition_by(table, source, "partitions redistributed")])
    return out


def _describe(out: PartitionChanges, s: Partitioning, t: Partitioning) -> None:
    if s.scheme() != t.scheme():
        out.differences.append(("partitioning", "differs", s.head_sql(), t.head_sql()))
        return
    skeys = {p.name: p.key(s.method) for p in s.partitions}
    tkeys = {p.name: p.key(t.method) for p in t.partitions}
    for p in s.partitions:
        if p.name not in tkeys:
            out.differences.append((f"partition {p.name}", "missing in target",
                                    s.partition_sql(p), None))
        elif tkeys[p.name] != skeys[p.name]:
            old = next(x for x in t.partitions if x.name == p.name)
            out.differences.append((f"partition {p.name}", "differs", s.partition_sql(p),
                                    t.partition_sql(old)))
    for p in t.partitions:
        if p.name not in skeys:
            out.differences.append((f"partition {p.name}", "only in target", None,
                                    t.partition_sql(p)))
    if not s.method.startswith("LIST") and [p.name for p in s.partitions if p.name in tkeys] \
            != [p.name for p in t.partitions if p.name in skeys]:
        out.differences.append(("partitions", "order", ", ".join(s.names), ", ".join(t.names)))


def _partition_by(table: str, source: Partitioning, why: str) -> tuple[str, list[tuple[Any, ...]]]:
    fails = ""
    if source.method.startswith(("RANGE", "LIST")) and not any(
            (p.values or "").upper() in ("MAXVALUE", "DEFAULT") or "MAXVALUE" in
            (p.values or "").upper() for p in source.partitions):
        fails = " (fails if a row has no partition in the new scheme)"
    return (f"ALTER TABLE {quote(table)} {source.clause()}",
            [("partition_by", table, True, f"{why}: the table is rebuilt, rows kept{fails}")])


def _same_scheme_steps(table: str, s: Partitioning, t: Partitioning
                       ) -> list[tuple[str, list[tuple[Any, ...]]]] | None:
    if s.method in ("HASH", "KEY"):
        return _hash_steps(table, s, t)
    if s.method.startswith("RANGE"):
        return _range_steps(table, s, t)
    return _list_steps(table, s, t)


def _hash_steps(table: str, s: Partitioning, t: Partitioning
                ) -> list[tuple[str, list[tuple[Any, ...]]]] | None:
    alter = f"ALTER TABLE {quote(table)} "
    sk = [p.key(s.method) for p in s.partitions]
    tk = [p.key(t.method) for p in t.partitions]
    if len(sk) > len(tk) and sk[:len(tk)] == tk:
        new = s.partitions[len(tk):]
        if s._default_names():
            sql = alter + f"ADD PARTITION PARTITIONS {len(new)}"
        else:
            sql = alter + "ADD PARTITION (" + ", ".join(s.partition_sql(p) for p in new) + ")"
        return [(sql, [("add_partition", p.name, True,
                        f"{len(tk)} → {len(sk)} partitions: rows are redistributed")
                       for p in new])]
    if len(sk) < len(tk) and tk[:len(sk)] == sk:
        gone = t.partitions[len(sk):]
        return [(alter + f"COALESCE PARTITION {len(gone)}",
                 [("coalesce_partition", p.name, True,
                   f"{len(tk)} → {len(sk)} partitions: rows are redistributed, none lost")
                  for p in gone])]
    return None


def _range_steps(table: str, s: Partitioning, t: Partitioning
                 ) -> list[tuple[str, list[tuple[Any, ...]]]] | None:
    """Group both partition lists at the bounds they share; each differing group is one
    REORGANIZE (rows kept); a tail only the source has is ADDed; a tail only the target
    has is DROPped (its rows have no partition in the source)."""
    common = {p.values for p in s.partitions} & {p.values for p in t.partitions}
    sg, tg = _groups(s.partitions, common), _groups(t.partitions, common)
    steps: list[tuple[str, list[tuple[Any, ...]]]] = []
    for sp, tp in zip(sg, tg, strict=True):
        if [p.key(s.method) for p in sp] == [p.key(t.method) for p in tp]:
            continue
        if not tp:
            steps.append(_add(table, s, sp))
        elif not sp:
            steps.append(_drop(table, tp, "the source's partitions end below these bounds"))
        elif sp[-1].values == tp[-1].values or _extends(sp[-1].values, tp[-1].values):
            # Only the last group may end higher (the server extends the last range).
            steps.append(_reorganize(table, s, tp, sp, ""))
        else:
            return None     # the source's range ends lower: no in-place path keeps it exact
    return steps


def _groups(parts: Sequence[Partition], common: set[str | None]) -> list[list[Partition]]:
    """Partitions cut after each shared bound; always len(common) + 1 groups."""
    groups: list[list[Partition]] = [[]]
    for p in parts:
        groups[-1].append(p)
        if p.values in common:
            groups.append([])
    return groups


def _extends(new: str | None, old: str | None) -> bool | None:
    """Is bound `new` above bound `old`? None when they cannot be compared here."""
    a, b = _bound_key(new or ""), _bound_key(old or "")
    if a is None or b is None:
        return None
    try:
        return a > b
    except TypeError:
        return None


def _bound_key(text: str) -> tuple[Any, ...] | None:
    out: list[tuple[Any, ...]] = []
    for item in split_items(text):
        if item.upper() == "MAXVALUE":
            out.append((2, 0))
        elif item.startswith("'") and item.endswith("'"):
            out.append((1, item[1:-1]))
        else:
            try:
                out.append((1, Decimal(item)))
            except InvalidOperation:
                return None
    return tuple(out)


def _list_steps(table: str, s: Partitioning, t: Partitioning
                ) -> list[tuple[str, list[tuple[Any, ...]]]] | None:
    """Unchanged partitions stay; the others form groups linked by shared values (or a
    DEFAULT partition, which holds every value no other partition lists); a group only the
    source has is ADDed, one only the target has is DROPped, the rest REORGANIZEd."""
    skeys = {p.name: p.key(s.method) for p in s.partitions}
    kept = {p.name for p in t.partitions if skeys.get(p.name) == p.key(t.method)}
    s_left = [p for p in s.partitions if p.name not in kept]
    t_left = [p for p in t.partitions if p.name not in kept]
    # A DEFAULT partition holds every value no other partition lists: new partitions take
    # rows out of the target's, and rows of dropped ones go into the source's.
    for default, other_left in ((_default(t), s_left), (_default(s), t_left)):
        if default is not None and other_left:
            for parts, left in ((t.partitions, t_left), (s.partitions, s_left)):
                for p in parts:
                    if p.name == default.name:
                        _append(left, p)
    steps: list[tuple[str, list[tuple[Any, ...]]]] = []
    adds = []
    for sp, tp in _components(s_left, t_left):
        if not tp:
            adds += sp
        elif not sp:
            steps.insert(0, _drop(table, tp, "the source lists none of their values"))
        elif all(p.values == "DEFAULT" for p in sp):
            return None     # MariaDB refuses REORGANIZE ... INTO (only a DEFAULT partition)
        else:
            lost = set().union(*(p.value_items() for p in tp)) - set().union(
                *(p.value_items() for p in sp))
            note = "" if any(p.values == "DEFAULT" for p in sp) or not lost else (
                f" (fails if rows hold {', '.join(sorted(lost))}: the source has no "
                "partition for them)")
            steps.append(_reorganize(table, s, tp, sp, note))
    if adds:
        steps.append(_add(table, s, adds))
    return steps


def _default(p: Partitioning) -> Partition | None:
    return next((x for x in p.partitions if x.values == "DEFAULT"), None)


def _append(parts: list[Partition], p: Partition) -> None:
    if p not in parts:
        parts.append(p)


def _components(s_left: list[Partition], t_left: list[Partition]
                ) -> list[tuple[list[Partition], list[Partition]]]:
    nodes = [("s", p) for p in s_left] + [("t", p) for p in t_left]
    parent = list(range(len(nodes)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, (side_a, a) in enumerate(nodes):
        for j in range(i + 1, len(nodes)):
            side_b, b = nodes[j]
            if side_a != side_b and _overlap(a, b):
                parent[find(i)] = find(j)
    groups: dict[int, tuple[list[Partition], list[Partition]]] = {}
    for i, (side, p) in enumerate(nodes):
        group = groups.setdefault(find(i), ([], []))
        group[0 if side == "s" else 1].append(p)
    return list(groups.values())


def _overlap(a: Partition, b: Partition) -> bool:
    if a.name == b.name or "DEFAULT" in (a.values, b.values):
        return True
    return bool(a.value_items() & b.value_items())


def _add(table: str, s: Partitioning,
         parts: Iterable[Partition]) -> tuple[str, list[tuple[Any, ...]]]:
    parts = list(parts)
    return (f"ALTER TABLE {quote(table)} ADD PARTITION ("
            + ", ".join(s.partition_sql(p) for p in parts) + ")",
            [("add_partition", p.name, True, "add partition (no rows move)") for p in parts])


def _drop(table: str, parts: Sequence[Partition], why: str) -> tuple[str, list[tuple[Any, ...]]]:
    names = ", ".join(quote(p.name) for p in parts)
    return (f"ALTER TABLE {quote(table)} DROP PARTITION {names}",
            [("drop_partition", p.name, False,
              f"dropping a partition deletes its rows ({why})") for p in parts])


def _reorganize(table: str, s: Partitioning, old: Sequence[Partition],
                new: Sequence[Partition], note: str) -> tuple[str, list[tuple[Any, ...]]]:
    what = ("split" if len(new) > len(old) else "merge" if len(new) < len(old)
            else "redefine")
    return (f"ALTER TABLE {quote(table)} REORGANIZE PARTITION "
            + ", ".join(quote(p.name) for p in old) + " INTO ("
            + ", ".join(s.partition_sql(p) for p in new) + ")",
            [("reorganize_partition", ", ".join(p.name for p in old), True,
              f"{what} {', '.join(p.name for p in old)} into "
              f"{', '.join(p.name for p in new)}: rows are moved, none lost{note}")])


def partition_columns(p: Partitioning | None, column_names: Iterable[str]) -> set[str]:
    """Columns a partitioning expression uses (a textual match on quoted names)."""
    if p is None:
        return set()
    text = f"{p.expression} {p.sub_expression or ''}"
    return {c for c in column_names if quote(c) in text or re.search(
        rf"(?<![\w`]){re.escape(c)}(?![\w`])", text)}
