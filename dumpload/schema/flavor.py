"""Every MySQL-vs-MariaDB difference the schema code knows about, in one place.

Inspection hands raw catalog rows (dicts keyed by information_schema column names) to the
functions here; they return canonical model values, so that a MariaDB schema and a MySQL
schema that mean the same thing compare equal. Canonical forms follow MariaDB's catalog:
literal defaults quoted, `current_timestamp()`, effective charset/collation per column,
`json` as a type, `RESTRICT` for NO ACTION. The few SQL forms that differ by flavor when
rendering are here too. No I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from typing import Any

from dumpload.flavor import Flavor
from dumpload.schema.model import Check, Column, ForeignKey, Index, IndexPart, Schema
from dumpload.sqltext import quote

Row = Mapping[str, Any]

_INT_TYPES = ("tinyint", "smallint", "mediumint", "int", "bigint")
_NUMERIC_TYPES = (*_INT_TYPES, "decimal", "numeric", "float", "double", "real", "bit",
                  "year", "boolean", "bool")
_CURRENT_TS = re.compile(r"current_timestamp\s*(\(\s*(\d*)\s*\))?|now\s*\(\s*(\d*)\s*\)"
                         r"|localtimestamp(\(\s*(\d*)\s*\))?", re.I)
_OPTION = re.compile(r"`?([A-Za-z_]+)`?=('[^']*'|\S+)")
# Options whose "not set" value is a number rather than the keyword DEFAULT.
_OPTION_RESET = {"KEY_BLOCK_SIZE": "0", "MAX_ROWS": "0", "MIN_ROWS": "0", "CHECKSUM": "0",
                 "DELAY_KEY_WRITE": "0", "AVG_ROW_LENGTH": "0"}


def get(row: Row, key: str, default: Any = None) -> Any:
    """A catalog value by column name, whatever the case the server used for it."""
    if key in row:
        return row[key]
    return row.get(key.lower(), default)


def text(value: Any) -> str | None:
    if value is None:
        return None
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def charset_name(name: str | None) -> str | None:
    """`utf8` is `utf8mb3` on both flavors (the catalog says either, by version)."""
    if not name:
        return None
    return "utf8mb3" if name.lower() == "utf8" else name.lower()


def collation_name(name: str | None) -> str | None:
    if not name:
        return None
    name = name.lower()
    return "utf8mb3" + name[4:] if name.startswith("utf8_") else name


def charset_of(collation: str | None) -> str | None:
    """The charset a collation belongs to (`utf8mb4_uca1400_ai_ci` → `utf8mb4`)."""
    if not collation:
        return None
    return collation if collation == "binary" else collation.split("_", 1)[0]


def normalize_type(column_type: str, keep_width: bool = False) -> str:
    """`int(11)` = `int`, `int(10) unsigned` = `int unsigned`, `year(4)` = `year`.

    MySQL 8.0.19+ hides integer display widths except with ZEROFILL and for `tinyint(1)`
    (the boolean convention), so those two keep theirs. MariaDB shows every width and
    `int(4)` is not `int(11)` there: `keep_width` (MariaDB) keeps them.
    """
    t = re.sub(r"\s+", " ", column_type.strip())
    head = t.split("(", 1)[0].split(" ", 1)[0].lower()
    if not keep_width:
        t = strip_display_width(t)
    if head == "year":
        t = "year"
    # Keep ENUM/SET value text as is (case matters there); lower-case the keywords only.
    match = re.match(r"^(\w+)(.*)$", t, re.S)
    if match and head in ("enum", "set"):
        return head + match.group(2)
    return t.lower()


def strip_display_width(column_type: str) -> str:
    """MySQL 8's rule: an integer's display width is dropped, except with ZEROFILL and for
    `tinyint(1)`. Applied to both sides when either server hides widths."""
    head = column_type.split("(", 1)[0].split(" ", 1)[0].lower()
    low = column_type.lower()
    if head in _INT_TYPES and "zerofill" not in low and not low.startswith("tinyint(1)"):
        return re.sub(r"^(\w+)\(\d+\)", r"\1", column_type)
    return column_type


def normalize_expression(expr: str | None) -> str | None:
    """CURRENT_TIMESTAMP/now() in any spelling → `current_timestamp()` / `current_timestamp(N)`."""
    if expr is None:
        return None

    def repl(m: re.Match[str]) -> str:
        digits = m.group(2) or m.group(3) or m.group(5) or ""
        return f"current_timestamp({digits})"
    return _CURRENT_TS.sub(repl, expr.strip())


def normalize_default(raw: str | None, extra: str, data_type: str, nullable: bool,
                      flavor: Flavor | str) -> str | None:
    """The default as SQL text in canonical (MariaDB catalog) form, or None for none.

    MariaDB (10.2.7+) already quotes literals and says `NULL` for DEFAULT NULL. MySQL gives
    literals bare and flags expressions with DEFAULT_GENERATED.
    """
    if Flavor.of(flavor).is_mysql and raw is not None:
        raw = _mysql_default(raw, extra, data_type)
    if raw is None:
        return "NULL" if nullable else None
    return normalize_expression(raw) if not raw.startswith("'") else raw


def _mysql_default(raw: str, extra: str, data_type: str) -> str:
    if "DEFAULT_GENERATED" in extra.upper() or _CURRENT_TS.fullmatch(raw):
        return raw
    if data_type.lower() in _NUMERIC_TYPES:
        return raw
    if raw.lower().startswith(("0x", "b'")):
        return raw
    return "'" + raw.replace("'", "''") + "'"


def on_update(extra: str) -> str | None:
    match = re.search(r"on update (\S+(\(\d*\))?)", extra, re.I)
    return normalize_expression(match.group(1)) if match else None


def unescape_mysql_expression(expr: str) -> str:
    """MySQL's catalog escapes quotes inside generation/check expressions (`\\'`)."""
    return expr.replace("\\'", "'")


def column_from_row(row: Row, flavor: Flavor | str,
                    column_checks: Mapping[str, str]) -> Column:
    """One information_schema.COLUMNS row → Column.

    `column_checks` maps column name → MariaDB column-level CHECK clause of this table.
    """
    flavor = Flavor.of(flavor)
    name = text(get(row, "COLUMN_NAME")) or ""
    extra = text(get(row, "EXTRA")) or ""
    data_type = (text(get(row, "DATA_TYPE")) or "").lower()
    nullable = (text(get(row, "IS_NULLABLE")) or "YES").upper() == "YES"
    ctype = normalize_type(text(get(row, "COLUMN_TYPE")) or data_type,
                           keep_width=flavor.keeps_int_display_width)
    charset = charset_name(text(get(row, "CHARACTER_SET_NAME")))
    collation = collation_name(text(get(row, "COLLATION_NAME")))
    upper = extra.upper()
    is_generated = any(k in upper for k in ("VIRTUAL", "STORED", "PERSISTENT"))
    generated = (text(get(row, "GENERATION_EXPRESSION")) or None) if is_generated else None
    if generated and flavor.is_mysql:
        generated = unescape_mysql_expression(generated)
    check = column_checks.get(name)
    if is_mariadb_json(data_type, collation, check, name):
        ctype, charset, collation, check = "json", None, None, None
    raw_default = text(get(row, "COLUMN_DEFAULT"))
    default = None if generated else normalize_default(raw_default, extra, data_type,
                                                       nullable, flavor)
    return Column(
        name=name, type=ctype, nullable=nullable, default=default,
        on_update=on_update(extra), auto_increment="auto_increment" in extra.lower(),
        charset=charset, collation=collation if charset else None,
        comment=text(get(row, "COLUMN_COMMENT")) or "",
        generated=normalize_expression(generated) if generated else None,
        stored="STORED" in extra.upper() or "PERSISTENT" in extra.upper(),
        invisible="INVISIBLE" in extra.upper(), check=check)


def is_mariadb_json(data_type: str, collation: str | None, check: str | None,
                    name: str) -> bool:
    """MariaDB's JSON: LONGTEXT COLLATE utf8mb4_bin with CHECK (json_valid(`col`))."""
    if data_type != "longtext" or not check:
        return False
    return (collation or "").endswith("_bin") and \
        re.sub(r"\s+", "", check).lower() == f"json_valid({quote(name)})".lower()


def indexes_from_rows(rows: Iterable[Row], flavor: Flavor | str,
                      using: Mapping[str, str] | None = None) -> tuple[Index, ...]:
    """information_schema.STATISTICS rows of one table → Indexes (catalog order kept)."""
    grouped: dict[str, list[Row]] = {}
    for row in rows:
        grouped.setdefault(text(get(row, "INDEX_NAME")) or "", []).append(row)
    out = []
    for name, parts in grouped.items():
        parts.sort(key=lambda r: int(get(r, "SEQ_IN_INDEX")))
        first = parts[0]
        itype = (text(get(first, "INDEX_TYPE")) or "").upper()
        if name == "PRIMARY":
            kind = "PRIMARY"
        elif itype in ("FULLTEXT", "SPATIAL"):
            kind = itype
        elif int(get(first, "NON_UNIQUE")) == 0:
            kind = "UNIQUE"
        else:
            kind = "INDEX"
        plain = kind not in ("FULLTEXT", "SPATIAL")
        out.append(Index(
            name=name, kind=kind,
            parts=tuple(IndexPart(
                column=text(get(r, "COLUMN_NAME")),
                sub_part=int(get(r, "SUB_PART")) if plain and get(r, "SUB_PART") else None,
                descending=(text(get(r, "COLLATION")) or "A") == "D",
                expression=text(get(r, "EXPRESSION")) or None) for r in parts),
            comment=text(get(first, "INDEX_COMMENT")) or "",
            invisible=index_invisible(first, flavor), using=(using or {}).get(name)))
    return tuple(out)


def index_invisible(row: Row, flavor: Flavor | str) -> bool:
    """MariaDB `IGNORED = YES` and MySQL `IS_VISIBLE = NO` mean the same."""
    if get(row, "IGNORED") is not None:
        return (text(get(row, "IGNORED")) or "NO").upper() == "YES"
    if get(row, "IS_VISIBLE") is not None:
        return (text(get(row, "IS_VISIBLE")) or "YES").upper() == "NO"
    return False


def fk_rule(rule: str | None) -> str:
    """RESTRICT, NO ACTION and omitted are the same thing on InnoDB."""
    rule = (rule or "RESTRICT").upper()
    return "RESTRICT" if rule in ("NO ACTION", "RESTRICT", "") else rule


def foreign_key_from_rows(name: str, rows: Sequence[Row], schema: str) -> ForeignKey:
    """KEY_COLUMN_USAGE rows (joined with REFERENTIAL_CONSTRAINTS) of one FK → ForeignKey.

    Columns are ordered by ORDINAL_POSITION: the catalog's row order is not stable on
    MySQL 8.0.19+.
    """
    rows = sorted(rows, key=lambda r: int(get(r, "ORDINAL_POSITION")))
    first = rows[0]
    ref_schema = text(get(first, "REFERENCED_TABLE_SCHEMA"))
    return ForeignKey(
        name=name, columns=tuple(text(get(r, "COLUMN_NAME")) or "" for r in rows),
        ref_table=text(get(first, "REFERENCED_TABLE_NAME")) or "",
        ref_columns=tuple(text(get(r, "REFERENCED_COLUMN_NAME")) or "" for r in rows),
        ref_schema=None if ref_schema in (None, schema) else ref_schema,
        on_delete=fk_rule(text(get(first, "DELETE_RULE"))),
        on_update=fk_rule(text(get(first, "UPDATE_RULE"))))


def check_from_row(row: Row, flavor: Flavor | str) -> Check:
    clause = text(get(row, "CHECK_CLAUSE")) or ""
    if Flavor.of(flavor).is_mysql:
        clause = unescape_mysql_expression(clause)
    return Check(text(get(row, "CONSTRAINT_NAME")) or "", normalize_expression(clause) or "")


def is_column_check(row: Row) -> bool:
    """MariaDB keeps column-level checks (`c INT CHECK (c > 0)`) as part of the column."""
    return (text(get(row, "LEVEL")) or "").lower() == "column"


def parse_create_options(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`row_format=COMPRESSED key_block_size=8 partitioned` → sorted (KEY, value) pairs."""
    pairs = {m.group(1).upper(): m.group(2) for m in _OPTION.finditer(raw or "")}
    pairs.pop("PARTITIONED", None)
    return tuple(sorted(pairs.items()))


def reset_option(key: str) -> str:
    """The value that clears a table option: DEFAULT, or 0 where DEFAULT is refused."""
    return _OPTION_RESET.get(key.upper(), "DEFAULT")


def strip_schema(definition: str, schema: str) -> str:
    """Remove `schema`. qualifiers of the view's own schema, so source and target compare."""
    return definition.replace(quote(schema) + ".", "")


def drop_check_sql(flavor: Flavor | str, name: str) -> str:
    """MariaDB drops a CHECK with DROP CONSTRAINT; MySQL 8.0.16+ with DROP CHECK."""
    return f"DROP {Flavor.of(flavor).check_drop_keyword} {quote(name)}"


def drop_index_sql(flavor: Flavor | str, index: Index) -> str:
    if index.kind == "PRIMARY":
        return "DROP PRIMARY KEY"
    return f"DROP INDEX {quote(index.name)}"


def target_collation(collation: str | None, target_flavor: Flavor | str,
                     available: frozenset[str] = frozenset()) -> str | None:
    """A source collation the target server does not have → its nearest equivalent.

    MySQL 8's default `utf8mb4_0900_*` does not exist on MariaDB before 11.4; the UCA 14
    collations (`uca1400`) are the closest, else `general_ci`.
    """
    if not collation or not available or collation in available:
        return collation
    if Flavor.of(target_flavor).is_mariadb and "_0900_" in collation:
        charset = charset_of(collation) or ""
        for candidate in (collation.replace("_0900_", "_uca1400_"),
                          charset + "_unicode_520_ci", charset + "_general_ci"):
            if candidate in available:
                return candidate
    return collation


def show_create_defaults(create_sql: str) -> dict[str, str]:
    """Column → expression default, read from SHOW CREATE TABLE (`DEFAULT (expr)`).

    MySQL's COLUMNS.COLUMN_DEFAULT loses the parentheses and escaping of expression
    defaults; SHOW CREATE TABLE keeps them.
    """
    out: dict[str, str] = {}
    for line in create_sql.splitlines():
        match = re.match(r"\s*`((?:[^`]|``)+)`\s", line)
        if not match:
            continue
        pos = line.find(" DEFAULT (", match.end() - 1)
        if pos < 0:
            continue
        expr = _balanced(line, pos + len(" DEFAULT "))
        if expr is not None:
            out[match.group(1).replace("``", "`")] = expr[1:-1]
    return out


def _balanced(line: str, start: int) -> str | None:
    """The parenthesised text starting at `start`, skipping quoted strings."""
    depth, i, quote_char = 0, start, ""
    while i < len(line):
        ch = line[i]
        if quote_char:
            if ch == "\\":
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
                return line[start:i + 1]
        i += 1
    return None


def needs_show_create(column_rows: Iterable[Row], flavor: Flavor | str) -> bool:
    """MySQL tables with expression defaults other than CURRENT_TIMESTAMP."""
    if not Flavor.of(flavor).is_mysql:
        return False
    for row in column_rows:
        extra = (text(get(row, "EXTRA")) or "").upper()
        raw = text(get(row, "COLUMN_DEFAULT")) or ""
        if "DEFAULT_GENERATED" in extra and not _CURRENT_TS.fullmatch(raw):
            return True
    return False


_INDEX_LINE = re.compile(
    r"\s*(PRIMARY KEY|(?:UNIQUE |FULLTEXT |SPATIAL )?KEY\s+`((?:[^`]|``)+)`)\s*")


def index_using(create_sql: str) -> dict[str, str]:
    """Index name → its explicit `USING BTREE|HASH|RTREE`, read from SHOW CREATE TABLE.

    The catalog cannot tell an explicit `USING HASH` on InnoDB (kept in the definition,
    built as a B-tree) from no clause, so the clause is taken from the server's CREATE.
    """
    out: dict[str, str] = {}
    for name, line, end in _index_lines(create_sql):
        cols = _balanced(line, end)
        if cols is None:
            continue
        rest = re.match(r"\s+USING\s+(BTREE|HASH|RTREE)\b", line[end + len(cols):], re.I)
        if rest:
            out[name] = rest.group(1).upper()
    return out


def shown_order(create_sql: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(index names, CHECK constraint names) in the order SHOW CREATE TABLE prints them.

    The catalog gives no order (the model sorts by name); a CREATE that lists them in this
    order is printed by the server the same way again."""
    checks = tuple(m.group(1).replace("``", "`") for m in _CHECK_LINE.finditer(create_sql))
    return tuple(name for name, _, _ in _index_lines(create_sql)), checks


_CHECK_LINE = re.compile(r"^\s*CONSTRAINT\s+`((?:[^`]|``)+)`\s+CHECK\b", re.M)


def _index_lines(create_sql: str) -> Iterator[tuple[str, str, int]]:
    """(index name, line, end of its name) of each index line of a SHOW CREATE TABLE."""
    for line in create_sql.splitlines():
        match = _INDEX_LINE.match(line)
        if match:
            yield ("PRIMARY" if match.group(1) == "PRIMARY KEY"
                   else match.group(2).replace("``", "`")), line, match.end()


def comparable(source: Schema, target: Schema) -> tuple[Schema, Schema]:
    """Both schemas in the terms both servers can show: integer display widths are kept
    only when both servers keep them (MariaDB to MariaDB)."""
    if source.flavor.keeps_int_display_width and target.flavor.keeps_int_display_width:
        return source, target
    return _without_widths(source), _without_widths(target)


def _without_widths(schema: Schema) -> Schema:
    tables = {name: replace(t, columns=tuple(replace(c, type=strip_display_width(c.type))
                                             for c in t.columns))
              for name, t in schema.tables.items()}
    return replace(schema, tables=tables)
