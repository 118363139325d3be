"""What a plan's changes demand of the rows already in the target: pure query building.

For each change that existing rows may not fit (NULLs under a new NOT NULL, values longer
or larger than a narrowed type, characters a new charset cannot hold, duplicates under a new
UNIQUE/PRIMARY KEY, orphans under a new FOREIGN KEY, a new NOT NULL column without a usable
value), a `DataCheck` holds the counting query and, where a lossy conversion can make the
rows fit, the UPDATE that does it. Duplicates and orphans never get one: rows are not
deleted to make a key fit. No I/O here; `preflight` runs the queries.
"""

from __future__ import annotations

from dataclasses import dataclass

from dumpload.schema.model import Column, ForeignKey, Index, Schema, Table, literal
from dumpload.schema.safety import _parse, mbmaxlen
from dumpload.sqltext import quote

_INT_RANGE = {"tinyint": 8, "smallint": 16, "mediumint": 24, "int": 32, "integer": 32,
              "bigint": 64}
_TEXT_BYTES = {"tinytext": 255, "text": 65535, "mediumtext": 16777215,
               "longtext": 4294967295, "tinyblob": 255, "blob": 65535,
               "mediumblob": 16777215, "longblob": 4294967295}
_NO_IMPLICIT_VALUE = ("geometry", "point", "linestring", "polygon", "multipoint",
                      "multilinestring", "multipolygon", "geometrycollection", "json")


@dataclass(frozen=True)
class DataCheck:
    table: str
    column: str | None
    check: str                 # nulls, too_long, out_of_range, charset, duplicates, ...
    what: str                  # for people: what would not fit
    count_sql: str             # SELECT giving one number: the rows that do not fit
    fix_sql: str | None = None  # UPDATE making them fit (lossy), where allowed
    # Set for a change across type families (text → number, ...): the rows are counted by
    # the server itself, converting the column into a scratch table of this definition.
    convert_to: str | None = None


def data_checks(source: Schema, target: Schema, skip_orphans: frozenset[str] = frozenset()
                ) -> list[DataCheck]:
    """Every check the rows of target tables that the plan keeps must pass."""
    out: list[DataCheck] = []
    for name in sorted(set(source.tables) & set(target.tables)):
        s, t = source.tables[name], target.tables[name]
        for col in s.columns:
            old = t.column(col.name)
            if old is None:
                out += _new_column_checks(t, col)
            elif old != col and col.generated is None and old.generated is None:
                out += _column_checks(t, old, col)
        out += _unique_checks(s, t)
        if name not in skip_orphans:
            out += _orphan_checks(source, target, s, t)
    return out


# --- columns ----------------------------------------------------------------------------------

def _column_checks(t: Table, old: Column, new: Column) -> list[DataCheck]:
    c, table = quote(new.name), quote(t.name)
    out = []
    if old.nullable and not new.nullable:
        fill = fill_value(new)
        out.append(DataCheck(
            t.name, new.name, "nulls", "NULL values under the new NOT NULL",
            f"SELECT COUNT(*) FROM {table} WHERE {c} IS NULL",
            f"UPDATE {table} SET {c} = {fill} WHERE {c} IS NULL" if fill else None))
    out += [x for x in (_length_check(t, old, new), _range_check(t, old, new),
                        _enum_check(t, old, new), _charset_check(t, old, new),
                        _family_check(t, old, new)) if x]
    return out


_FAMILIES = {
    "numeric": (*_INT_RANGE, "decimal", "numeric", "float", "double", "real", "bit", "year"),
    "string": ("char", "varchar", "tinytext", "text", "mediumtext", "longtext"),
    "binary": ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"),
    "temporal": ("date", "datetime", "timestamp", "time"),
}


def family(ctype: str) -> str:
    base = _parse(ctype)[0]
    return next((name for name, members in _FAMILIES.items() if base in members), base)


def _family_check(t: Table, old: Column, new: Column) -> DataCheck | None:
    """Text → number, text → date, number → enum, ...: only the server knows which values
    convert, so it converts them (see `preflight`); strict DDL would fail on the first."""
    fo, fn = family(old.type), family(new.type)
    if fo == fn or fn in ("string", "binary") or (fo, fn) == ("temporal", "numeric"):
        return None
    definition = new.type + (f" CHARACTER SET {new.charset} COLLATE {new.collation}"
                             if new.charset and new.type != "json" else "") + " NULL"
    return DataCheck(t.name, new.name, "conversion",
                     f"values that do not convert to {new.type}",
                     f"SELECT {quote(new.name)} FROM {quote(t.name)} "
                     f"WHERE {quote(new.name)} IS NOT NULL", convert_to=definition)


def fill_value(col: Column) -> str | None:
    """The value NULLs become under NOT NULL: the column's own literal default, else the
    type's zero value (what the server itself uses for a missing value)."""
    if col.default not in (None, "NULL") and col.default.startswith("'") or \
            col.default not in (None, "NULL") and col.default[:1].isdigit():
        return col.default
    base, args, _ = _parse(col.type)
    if base in _NO_IMPLICIT_VALUE:
        return None
    if base in ("enum",):
        return literal(args[0]) if args else None
    if base in ("date",):
        return "'0000-00-00'"
    if base in ("datetime", "timestamp"):
        return "'0000-00-00 00:00:00'"
    if base in ("time",):
        return "'00:00:00'"
    if base in _INT_RANGE or base in ("decimal", "numeric", "float", "double", "real", "bit",
                                      "year"):
        return "0"
    return "''"


def _length_check(t: Table, old: Column, new: Column) -> DataCheck | None:
    ob, oa, _ = _parse(old.type)
    nb, na, _ = _parse(new.type)
    c, table = quote(new.name), quote(t.name)
    if nb in ("char", "varchar", "binary", "varbinary"):
        limit = int(na[0]) if na else 1
        if ob in ("char", "varchar", "binary", "varbinary") and oa and int(oa[0]) <= limit:
            return None
        length = "LENGTH" if nb in ("binary", "varbinary") else "CHAR_LENGTH"
        cond = f"{length}({c}) > {limit}"
        return DataCheck(t.name, new.name, "too_long", f"values longer than {new.type}",
                         f"SELECT COUNT(*) FROM {table} WHERE {cond}",
                         f"UPDATE {table} SET {c} = LEFT({c}, {limit}) WHERE {cond}")
    if nb in _TEXT_BYTES and (ob != nb or old.charset != new.charset):
        limit = _TEXT_BYTES[nb]
        if ob in _TEXT_BYTES and _TEXT_BYTES[ob] <= limit and old.charset == new.charset:
            return None
        value = f"CONVERT({c} USING {new.charset})" if new.charset else c
        cond = f"LENGTH({value}) > {limit}"
        keep = limit // mbmaxlen(new.charset)
        return DataCheck(t.name, new.name, "too_long",
                         f"values over {nb}'s {limit} bytes" +
                         (f" in {new.charset}" if new.charset else ""),
                         f"SELECT COUNT(*) FROM {table} WHERE {cond}",
                         f"UPDATE {table} SET {c} = LEFT({c}, {keep}) WHERE {cond}")
    return None


def int_bounds(ctype: str) -> tuple[int, int] | None:
    base, args, unsigned = _parse(ctype)
    if base in _INT_RANGE:
        bits = _INT_RANGE[base]
        return (0, 2 ** bits - 1) if unsigned else (-2 ** (bits - 1), 2 ** (bits - 1) - 1)
    return None


def _range_check(t: Table, old: Column, new: Column) -> DataCheck | None:
    c, table = quote(new.name), quote(t.name)
    nb, na, nu = _parse(new.type)
    ob, oa, ou = _parse(old.type)
    if nb in _INT_RANGE and ob in (*_INT_RANGE, "decimal", "numeric", "float", "double"):
        lo, hi = int_bounds(new.type)  # type: ignore[misc]
        old_bounds = int_bounds(old.type)
        if old_bounds and old_bounds[0] >= lo and old_bounds[1] <= hi:
            return None
        low, high = str(lo), str(hi)
    elif nb in ("decimal", "numeric") and ob in (*_INT_RANGE, "decimal", "numeric", "float",
                                                 "double"):
        p, s = (int(na[0]) if na else 10), (int(na[1]) if len(na) > 1 else 0)
        top = "9" * (p - s) + ("." + "9" * s if s else "")
        low, high = ("0" if nu else "-" + top), top
        if ob in ("decimal", "numeric"):
            op, os_ = (int(oa[0]) if oa else 10), (int(oa[1]) if len(oa) > 1 else 0)
            if op - os_ <= p - s and (ou or not nu):
                return None
    else:
        return None
    cond = f"{c} < {low} OR {c} > {high}"
    return DataCheck(t.name, new.name, "out_of_range",
                     f"values outside {new.type} ({low} … {high})",
                     f"SELECT COUNT(*) FROM {table} WHERE {cond}",
                     f"UPDATE {table} SET {c} = LEAST(GREATEST({c}, {low}), {high}) "
                     f"WHERE {cond}")


def _enum_check(t: Table, old: Column, new: Column) -> DataCheck | None:
    ob, oa, _ = _parse(old.type)
    nb, na, _ = _parse(new.type)
    if ob != nb or ob not in ("enum", "set"):
        return None
    gone = [v for v in oa if v not in na]
    if not gone:
        return None
    c, table = quote(new.name), quote(t.name)
    values = ", ".join(literal(v.replace("''", "'")) for v in gone)
    cond = f"{c} IN ({values})" if ob == "enum" else " OR ".join(
        f"FIND_IN_SET({literal(v.replace(chr(39) * 2, chr(39)))}, {c})" for v in gone)
    fix = None
    if ob == "enum" and new.nullable:
        fix = f"UPDATE {table} SET {c} = NULL WHERE {cond}"
    return DataCheck(t.name, new.name, "removed_value", f"rows holding removed {ob} values "
                     f"({', '.join(gone)})", f"SELECT COUNT(*) FROM {table} WHERE {cond}", fix)


def _charset_check(t: Table, old: Column, new: Column) -> DataCheck | None:
    if not old.charset or not new.charset or old.charset == new.charset or new.type == "json":
        return None
    c, table = quote(new.name), quote(t.name)
    round_trip = f"CONVERT(CONVERT({c} USING {new.charset}) USING {old.charset})"
    cond = f"BINARY {round_trip} <> BINARY {c}"
    return DataCheck(t.name, new.name, "charset",
                     f"characters {new.charset} cannot hold",
                     f"SELECT COUNT(*) FROM {table} WHERE {cond}",
                     f"UPDATE {table} SET {c} = {round_trip} WHERE {cond}")


def _new_column_checks(t: Table, col: Column) -> list[DataCheck]:
    """A NOT NULL column added without a default takes the type's implicit value in every
    existing row; JSON (MariaDB: '' fails its json_valid check) and spatial types have none."""
    if col.nullable or col.default is not None or col.generated or col.auto_increment:
        return []
    base = _parse(col.type)[0]
    if base not in _NO_IMPLICIT_VALUE and not col.check:
        return []
    return [DataCheck(t.name, col.name, "no_default",
                      f"new NOT NULL {col.type} column without a usable default",
                      f"SELECT COUNT(*) FROM {quote(t.name)}")]


# --- keys ---------------------------------------------------------------------------------------

def _unique_checks(s: Table, t: Table) -> list[DataCheck]:
    out = []
    old = {i.name: i for i in t.indexes}
    for index in s.indexes:
        if index.kind not in ("PRIMARY", "UNIQUE") or old.get(index.name) == index:
            continue
        if any(i.kind in ("PRIMARY", "UNIQUE") and _covers(index, i) for i in t.indexes):
            continue  # an existing unique key on a subset of these columns: no duplicates
        check = _duplicates(s, t, index)
        if check:
            out.append(check)
    return out


def _covers(new: Index, old: Index) -> bool:
    """Is `old` (unique) on a subset of `new`'s whole columns? Then `new` is unique too."""
    whole = {p.column for p in new.parts if not p.sub_part and p.column}
    return bool(old.columns) and all(p.column in whole and not p.sub_part for p in old.parts)


def _duplicates(s: Table, t: Table, index: Index) -> DataCheck | None:
    exprs, nulls = [], []
    for part in index.parts:
        if part.column is None:
            return None                     # functional part: the rehearsal has to do
        old = t.column(part.column)
        new = s.column(part.column)
        if old is None:
            if new is None or new.auto_increment or (new.nullable and new.default in
                                                     (None, "NULL")):
                return None                 # unique values or NULLs: no duplicates
            continue                        # one value in every row: groups by the rest
        col = quote(part.column)
        exprs.append(f"LEFT({col}, {part.sub_part})" if part.sub_part else col)
        nulls.append(f"{col} IS NOT NULL")
    table = quote(t.name)
    group = ", ".join(exprs) or "NULL"
    where = f" WHERE {' AND '.join(nulls)}" if nulls and index.kind != "PRIMARY" else ""
    kind = "primary key" if index.kind == "PRIMARY" else f"unique key {index.name}"
    return DataCheck(t.name, ", ".join(index.columns), "duplicates",
                     f"duplicate rows under the new {kind}",
                     f"SELECT COALESCE(SUM(n), 0) FROM (SELECT COUNT(*) AS n FROM {table}"
                     f"{where} GROUP BY {group} HAVING COUNT(*) > 1) AS d")


def _orphan_checks(source: Schema, target: Schema, s: Table, t: Table) -> list[DataCheck]:
    old = {f.name: f for f in t.foreign_keys}
    out = []
    for fk in s.foreign_keys:
        if old.get(fk.name) == fk or any(f == fk for f in old.values()):
            continue
        check = _orphans(target, s, t, fk)
        if check:
            out.append(check)
    return out


def _orphans(target: Schema, s: Table, t: Table, fk: ForeignKey) -> DataCheck | None:
    if any(t.column(c) is None for c in fk.columns):
        return None   # a new column: NULL (nullable) or checked by the rehearsal
    child = quote(t.name)
    cols = [f"c.{quote(c)}" for c in fk.columns]
    present = " AND ".join(f"{c} IS NOT NULL" for c in cols)
    parent_exists = fk.ref_schema is not None or fk.ref_table in target.tables
    parent = (f"{quote(fk.ref_schema)}.{quote(fk.ref_table)}" if fk.ref_schema
              else quote(fk.ref_table))
    if parent_exists and all(
            fk.ref_schema or target.tables[fk.ref_table].column(r) is not None
            for r in fk.ref_columns):
        match = " AND ".join(f"p.{quote(r)} = {c}" for r, c in zip(fk.ref_columns, cols,
                                                                   strict=True))
        cond = f"{present} AND NOT EXISTS (SELECT 1 FROM {parent} AS p WHERE {match})"
    else:
        cond = present     # the parent (or its columns) is new: empty when the FK is added
    return DataCheck(t.name, ", ".join(fk.columns), "orphans",
                     f"rows without a parent in {fk.ref_table} for the new foreign key "
                     f"{fk.name}", f"SELECT COUNT(*) FROM {child} AS c WHERE {cond}")
