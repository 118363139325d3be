"""How rows are written by the source and read by `LOAD DATA` on the target (pure SQL text).

The source's own client runs `SELECT <expressions>` in `--batch --raw` mode with
`--default-character-set=binary`; the expressions below make the server produce LOAD
DATA's default escaping itself (tab-separated, `\\N` for NULL, backslash, tab and newline
escaped), so Python only relays bytes. Choices, each checked against the server:

- strings and binary strings: three nested `REGEXP_REPLACE`s, in the column's own
  charset, sent with the session charset binary, so bytes of any charset travel unchanged
  (no conversion, no double encoding). Not `REPLACE`: MariaDB's REPLACE moves the rest
  of the string at every match, which is quadratic (160 k tabs in one value: 52 s);
  REGEXP_REPLACE builds a new string and stays linear (0.2 s);
- ucs2/utf16/utf32 and spatial values: `HEX()` here, `UNHEX()` in LOAD DATA's SET (their
  bytes may contain 0x5C/0x09/0x0A inside a character);
- FLOAT: `CAST(col AS DOUBLE)` (the server prints FLOAT with 6 digits only, DOUBLE with
  the shortest exact form, so a FLOAT's exact value survives);
- BIT: `col + 0` and `CAST(@v AS UNSIGNED)` on load (a BIT read from text would store
  the characters' bytes);
- generated columns are not sent (the target recomputes them); invisible columns are
  named explicitly in both lists.
"""

from __future__ import annotations

from dataclasses import dataclass

from dumpload.data.tables import Column, quote

HEX_CHARSETS = {"ucs2", "utf16", "utf16le", "utf32"}
SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
           "multipolygon", "geometrycollection", "geomcollection"}
STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
           "json", "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
LOBS = {"tinytext", "text", "mediumtext", "longtext", "json", "tinyblob", "blob",
        "mediumblob", "longblob"} | SPATIAL

# SQL literals halve backslashes and regexps halve them again: the pattern '\\\\' matches
# one backslash, the replacement '\\\\\\\\' writes two; '\\N' is the two bytes \N.
_ESCAPED = (r"REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE({v}, '\\\\', '\\\\\\\\'), "
            r"'\t', '\\\\t'), '\n', '\\\\n')")
_NULL = "'\\\\N'"


def _kind(col: Column) -> str:
    if col.data_type in SPATIAL or (col.charset or "").lower() in HEX_CHARSETS:
        return "hex"
    if col.data_type == "bit":
        return "bit"
    if col.data_type == "float":
        return "float"
    if col.data_type in STRINGS:
        return "string"
    return "plain"


def select_expr(col: Column) -> str:
    """The SELECT expression that prints `col` in LOAD DATA's escaped text form."""
    q = quote(col.name)
    kind = _kind(col)
    value = {"hex": f"HEX({q})", "bit": f"{q} + 0", "float": f"CAST({q} AS DOUBLE)",
             "string": _ESCAPED.format(v=q), "plain": q}[kind]
    return f"IFNULL({value}, {_NULL})" if col.nullable else value


@dataclass(frozen=True)
class LoadSpec:
    """The column list and SET clause of a LOAD DATA statement, as SQL text."""

    targets: str
    sets: str

    def to_dict(self) -> dict[str, str]:
        return {"targets": self.targets, "sets": self.sets}


def load_spec(columns: list[Column]) -> LoadSpec:
    """`(col, @v1, ...)` and `SET col = UNHEX(@v1), ...` for the copied columns."""
    targets, sets = [], []
    for i, col in enumerate(columns):
        kind = _kind(col)
        if kind in ("hex", "bit"):
            var = f"@dl_v{i}"
            targets.append(var)
            fn = "UNHEX({v})" if kind == "hex" else "CAST({v} AS UNSIGNED)"
            sets.append(f"{quote(col.name)} = {fn.format(v=var)}")
        else:
            targets.append(quote(col.name))
    return LoadSpec("(" + ", ".join(targets) + ")", ("SET " + ", ".join(sets)) if sets else "")


def select_sql(table: str, columns: list[Column], where: str = "") -> str:
    exprs = ", ".join(select_expr(c) for c in columns)
    return f"SELECT {exprs} FROM {quote(table)}" + (f" WHERE {where}" if where else "")


def load_sql(table: str, spec: LoadSpec, path: str = "/dev/stdin") -> str:
    """LOAD DATA LOCAL with the default field/line format, bytes taken as they are."""
    return (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {quote(table)} CHARACTER SET binary "
            f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"{spec.targets} {spec.sets}").rstrip()


def _checksum_piece(col: Column) -> str:
    """A column's bytes for the row hash: NULL → '-', else `<length>:<bytes>`."""
    q = quote(col.name)
    if col.data_type == "bit":
        value = f"CAST({q} + 0 AS CHAR)"
    elif col.data_type == "float":
        value = f"CAST(CAST({q} AS DOUBLE) AS CHAR)"
    elif col.data_type in SPATIAL:
        value = f"HEX({q})"
    else:
        value = f"CAST({q} AS BINARY)"
    if col.data_type in LOBS:  # big values: hash each one, the row's CONCAT stays small
        value = f"MD5({value})"
    return f"IFNULL(CONCAT(LENGTH({value}), ':', {value}), '-')"


def row_hash(columns: list[Column]) -> str:
    """MD5 of one row over all columns (generated ones too: they must match as well)."""
    return "MD5(CONCAT(" + ", ';', ".join(_checksum_piece(c) for c in columns) + "))"


def checksum_sql(table: str, columns: list[Column], where: str = "") -> str:
    """`COUNT(*)` and two 64-bit halves of the row MD5s, summed (exact DECIMALs).

    Sums, not XOR: a duplicated row adds its hash twice instead of cancelling out.
    """
    h = row_hash(columns)
    halves = ", ".join(
        f"COALESCE(SUM(CAST(CONV(SUBSTRING({h}, {start}, 16), 16, 10) AS UNSIGNED)), 0)"
        for start in (1, 17))
    return (f"SELECT COUNT(*), {halves} FROM {quote(table)}"
            + (f" WHERE {where}" if where else ""))
