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

from dumpload.data.tables import Column
from dumpload.sqltext import quote

HEX_CHARSETS = {"ucs2", "utf16", "utf16le", "utf32"}
SPATIAL = {"geometry", "point", "linestring", "polygon", "multipoint", "multilinestring",
           "multipolygon", "geometrycollection", "geomcollection"}
STRINGS = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set",
           "json", "binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"}
HASHED_LOBS = {"mediumtext", "longtext", "json", "mediumblob", "longblob"}

# SQL literals halve backslashes and regexps halve them again: the pattern '\\\\' matches
# one backslash, the replacement '\\\\\\\\' writes two; '\\N' is the two bytes \N.
_ESCAPED = (r"REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE({v}, '\\\\', '\\\\\\\\'), "
            r"'\t', '\\\\t'), '\n', '\\\\n')")
_NULL = "'\\\\N'"
_SPECIAL = r"_binary'[\t\n\\\\]'"  # a tab, a newline or a backslash, byte-wise


def _kind(col: Column, flavor: str = "mariadb") -> str:
    if col.data_type in SPATIAL or (col.charset or "").lower() in HEX_CHARSETS:
        return "hex"
    if flavor != "mariadb" and col.data_type in STRINGS:
        # MySQL's regexp functions (ICU) refuse binary strings: hex is slower but exact.
        return "hex"
    if col.data_type == "bit":
        return "bit"
    if col.data_type == "float":
        return "float"
    if col.data_type in STRINGS:
        return "string"
    return "plain"


def _escaped(q: str) -> str:
    # Most values hold nothing to escape: one REGEXP test is cheaper than three replaces.
    return f"IF({q} REGEXP {_SPECIAL}, {_ESCAPED.format(v=q)}, {q})"


def select_expr(col: Column, flavor: str = "mariadb") -> str:
    """The SELECT expression that prints `col` in LOAD DATA's escaped text form.

    `flavor` is the source server's ("mariadb" or "mysql").
    """
    q = quote(col.name)
    kind = _kind(col, flavor)
    value = {"hex": f"HEX({q})", "bit": f"{q} + 0", "float": f"CAST({q} AS DOUBLE)",
             "string": _escaped(q), "plain": q}[kind]
    return f"IFNULL({value}, {_NULL})" if col.nullable else value


@dataclass(frozen=True)
class LoadSpec:
    """The column list and SET clause of a LOAD DATA statement, as SQL text."""

    targets: str
    sets: str

    def to_dict(self) -> dict[str, str]:
        return {"targets": self.targets, "sets": self.sets}


def load_spec(columns: list[Column], flavor: str = "mariadb") -> LoadSpec:
    """`(col, @v1, ...)` and `SET col = UNHEX(@v1), ...` for the copied columns, as the
    source of `flavor` writes them."""
    targets, sets = [], []
    for i, col in enumerate(columns):
        kind = _kind(col, flavor)
        if kind in ("hex", "bit"):
            var = f"@dl_v{i}"
            targets.append(var)
            fn = "UNHEX({v})" if kind == "hex" else "CAST({v} AS UNSIGNED)"
            sets.append(f"{quote(col.name)} = {fn.format(v=var)}")
        else:
            targets.append(quote(col.name))
    return LoadSpec("(" + ", ".join(targets) + ")", ("SET " + ", ".join(sets)) if sets else "")


def select_sql(table: str, columns: list[Column], where: str = "",
               flavor: str = "mariadb") -> str:
    exprs = ", ".join(select_expr(c, flavor) for c in columns)
    return f"SELECT {exprs} FROM {quote(table)}" + (f" WHERE {where}" if where else "")


def load_sql(table: str, spec: LoadSpec, path: str = "/dev/stdin") -> str:
    """LOAD DATA LOCAL with the default field/line format, bytes taken as they are."""
    return (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {quote(table)} CHARACTER SET binary "
            f"FIELDS TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
            f"{spec.targets} {spec.sets}").rstrip()


def _checksum_piece(col: Column, as_bytes: bool) -> str:
    """A column's text for the row hash; NULL → '-', strings as `<length>:<bytes>`.

    Numbers, dates, BIT and spatial hex never contain ';' or '-' alone, so they need no
    length prefix; strings do (they may contain the separator). Big LOBs are hashed
    first so that a row's string stays far below max_allowed_packet.
    """
    q = quote(col.name)
    kind = _kind(col)
    if kind == "bit":
        value = f"{q} + 0"
    elif kind == "float":
        value = f"CAST({q} AS DOUBLE)"
    elif col.data_type in SPATIAL:
        value = f"HEX({q})"
    elif kind in ("string", "hex"):
        value = f"CAST({q} AS BINARY)" if as_bytes else q
        if col.data_type in HASHED_LOBS:
            value = f"MD5({value})"
        value = f"CONCAT(LENGTH({q}), ':', {value})"
    else:
        value = q
    return f"IFNULL({value}, '-')" if col.nullable else value


def row_hash(columns: list[Column]) -> str:
    """MD5 of one row over all columns (generated ones too: they must match as well).

    Strings go in as they are when they share one collation (cheapest); with several,
    CONCAT would refuse the mix, so all go in as their bytes.
    """
    collations = {c.collation for c in columns if c.charset and _kind(c) in ("string", "hex")}
    as_bytes = len(collations) > 1
    return "MD5(CONCAT(" + ", ';', ".join(_checksum_piece(c, as_bytes) for c in columns) + "))"


def checksum_kind(flavor: str, version: tuple[int, int, int]) -> str:
    """"crc" where the server has CRC32C (MariaDB 10.8+), else "md5"."""
    return "crc" if flavor == "mariadb" and version >= (10, 8, 0) else "md5"


def checksum_sql(table: str, columns: list[Column], where: str = "", kind: str = "md5") -> str:
    """`COUNT(*)` and the sum of a 64-bit hash of every row (an exact DECIMAL).

    A sum, not XOR: a duplicated row adds its hash twice instead of cancelling out. The
    row string is built once per row (it is the expensive part). "md5": the first 64 bits
    of its MD5; "crc": CRC32 and CRC32C of it side by side (two different polynomials,
    64 bits, half the cost of MD5; the string is kept in a user variable between them).
    """
    row = row_hash(columns)[4:-1]  # the CONCAT inside MD5(...)
    if kind == "crc":
        value = f"CRC32(@dl_row := {row}) * 4294967296 + CRC32C(@dl_row)"
    else:
        value = f"CAST(CONV(SUBSTRING(MD5({row}), 1, 16), 16, 10) AS UNSIGNED)"
    return (f"SELECT COUNT(*), COALESCE(SUM({value}), 0) FROM {quote(table)}"
            + (f" WHERE {where}" if where else ""))
