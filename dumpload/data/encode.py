"""How rows are written by the source and read by `LOAD DATA` on the target (pure SQL text).

Rows travel as text in LOAD DATA's default format (tab-separated, backslash escapes), in
one of two formats; both are byte-exact, both keep Python from touching rows:

- CLIENT (the copy): the source client runs in `--batch` mode *without* `--raw`, so the
  client itself escapes NUL, tab, newline and backslash as `\\0 \\t \\n \\\\`, which
  is exactly what LOAD DATA unescapes. It prints an SQL NULL as the bare word `NULL`;
  LOAD DATA reads that word as NULL when `FIELDS ENCLOSED BY` is set, so the load says
  `ENCLOSED BY '\\0'`: a raw NUL byte never reaches it (the client escapes every one), so
  no field is ever taken as enclosed. The one ambiguity left is a string whose value is
  the four bytes `NULL`: rows holding one are counted first (`census_sql`) and, when
  there are any, sent apart (`client_parts`) with their strings prefixed by `~`, which
  the load cuts off again. The server does no escaping work at all: on the benchmark
  table this halves the source's CPU for the extraction (4.2 s → 2.1 s for 2 M rows).
- SERVER (export files, kept stable for `import`): the client runs with `--raw` and the
  SELECT makes the server write LOAD DATA's escaping itself (`\\N` for NULL).

Expressions, each checked against the server:
- strings and binary strings are sent with the session charset binary, so bytes of any
  charset travel unchanged (no conversion, no double encoding). SERVER escapes them with
  three nested `REGEXP_REPLACE`s (not `REPLACE`, which is quadratic in MariaDB);
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

import re
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


SERVER, CLIENT = "server", "client"   # the two text formats (module docstring)


def select_expr(col: Column, flavor: str = "mariadb", fmt: str = SERVER, *,
                prefixed: bool = False) -> str:
    """The SELECT expression that prints `col` in LOAD DATA's text form, in format `fmt`.

    `flavor` is the source server's ("mariadb" or "mysql"). `prefixed` (CLIENT only): a
    column that may print the word NULL is sent with a `~` in front (`client_parts`).
    """
    q = quote(col.name)
    if fmt == CLIENT and prefixed and prints_null_word(col, flavor):
        return f"CONCAT(_binary'~', {q})"
    value = {"hex": f"HEX({q})", "bit": f"{q} + 0", "float": f"CAST({q} AS DOUBLE)",
             "string": q if fmt == CLIENT else _escaped(q), "plain": q}[_kind(col, flavor)]
    if fmt == CLIENT:
        return value  # the client escapes it, and prints NULL as the word NULL
    return f"IFNULL({value}, {_NULL})" if col.nullable else value


def prints_null_word(col: Column, flavor: str = "mariadb") -> bool:
    """Whether the CLIENT format may print a value of `col` as the bare word `NULL`.

    Only strings sent as they are (not hex) can; not an ENUM/SET without a `null` member,
    nor a CHAR/BINARY type shorter than 4.
    """
    if _kind(col, flavor) != "string":
        return False
    ctype = col.column_type.lower()
    if col.data_type in ("enum", "set"):
        return "'null'" in ctype
    size = re.match(r"\w+\((\d+)\)", ctype)
    return not (size and col.data_type in ("char", "varchar", "binary", "varbinary")
                and int(size.group(1)) < 4)


def null_word_test(columns: list[Column], flavor: str = "mariadb") -> str:
    """SQL that is 1 for a row holding a string the CLIENT format prints as `NULL`, else 0
    ("" when no column can). Never NULL; may also match `null` or `NULL ` (harmless: such
    rows just take the exact, slower path)."""
    tests = [f"(LENGTH({quote(c.name)}) <=> 4 AND {quote(c.name)} <=> _binary'NULL')"
             for c in columns if prints_null_word(c, flavor)]
    return " OR ".join(tests)


@dataclass(frozen=True)
class LoadSpec:
    """The column list and SET clause of a LOAD DATA statement, as SQL text.

    `null_word`: the CLIENT format, where the bare word NULL is an SQL NULL."""

    targets: str
    sets: str
    null_word: bool = False

    def to_dict(self) -> dict[str, str]:
        return {"targets": self.targets, "sets": self.sets}


def load_spec(columns: list[Column], flavor: str = "mariadb", fmt: str = SERVER, *,
              prefixed: bool = False) -> LoadSpec:
    """`(col, @v1, ...)` and `SET col = UNHEX(@v1), ...` for the copied columns, as the
    source of `flavor` writes them in format `fmt` (`prefixed`: see `select_expr`)."""
    targets, sets = [], []
    for i, col in enumerate(columns):
        kind = _kind(col, flavor)
        var = f"@dl_v{i}"
        if kind in ("hex", "bit"):
            fn = "UNHEX({v})" if kind == "hex" else "CAST({v} AS UNSIGNED)"
        elif fmt == CLIENT and prefixed and prints_null_word(col, flavor):
            fn = "SUBSTRING({v}, 2)"
        else:
            targets.append(quote(col.name))
            continue
        targets.append(var)
        sets.append(f"{quote(col.name)} = {fn.format(v=var)}")
    return LoadSpec("(" + ", ".join(targets) + ")", ("SET " + ", ".join(sets)) if sets else "",
                    null_word=fmt == CLIENT)


def select_sql(table: str, columns: list[Column], where: str = "",
               flavor: str = "mariadb", fmt: str = SERVER, *, prefixed: bool = False) -> str:
    exprs = ", ".join(select_expr(c, flavor, fmt, prefixed=prefixed) for c in columns)
    return f"SELECT {exprs} FROM {quote(table)}" + (f" WHERE {where}" if where else "")


@dataclass(frozen=True)
class Part:
    """One SELECT on the source and the LOAD DATA spec that reads its output."""

    select: str
    spec: LoadSpec


def client_parts(table: str, columns: list[Column], where: str = "",
                 flavor: str = "mariadb", *, null_words: bool = False) -> list[Part]:
    """How to copy the rows of `table` matching `where` in the CLIENT format.

    One part, unless `null_words` (the census found rows holding a string `NULL`): then
    the other rows as usual, and those rows apart with their strings prefixed.
    """
    test = null_word_test(columns, flavor)
    if not (null_words and test):
        return [Part(select_sql(table, columns, where, flavor, CLIENT),
                     load_spec(columns, flavor, CLIENT))]

    def both(condition: str) -> str:
        return f"({where}) AND {condition}" if where else condition
    return [Part(select_sql(table, columns, both(f"NOT ({test})"), flavor, CLIENT),
                 load_spec(columns, flavor, CLIENT)),
            Part(select_sql(table, columns, both(f"({test})"), flavor, CLIENT, prefixed=True),
                 load_spec(columns, flavor, CLIENT, prefixed=True))]


def load_sql(table: str, spec: LoadSpec, path: str = "/dev/stdin") -> str:
    """LOAD DATA LOCAL with the default field/line format, bytes taken as they are."""
    enclosed = "OPTIONALLY ENCLOSED BY '\\0' " if spec.null_word else ""
    return (f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {quote(table)} CHARACTER SET binary "
            f"FIELDS TERMINATED BY '\\t' {enclosed}ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' "
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


def _hash_sum(columns: list[Column], kind: str) -> str:
    row = row_hash(columns)[4:-1]  # the CONCAT inside MD5(...)
    if kind == "crc":
        value = f"CRC32(@dl_row := {row}) * 4294967296 + CRC32C(@dl_row)"
    else:
        value = f"CAST(CONV(SUBSTRING(MD5({row}), 1, 16), 16, 10) AS UNSIGNED)"
    return f"COALESCE(SUM({value}), 0)"


def checksum_sql(table: str, columns: list[Column], where: str = "", kind: str = "md5") -> str:
    """`COUNT(*)` and the sum of a 64-bit hash of every row (an exact DECIMAL).

    A sum, not XOR: a duplicated row adds its hash twice instead of cancelling out. The
    row string is built once per row (it is the expensive part). "md5": the first 64 bits
    of its MD5; "crc": CRC32 and CRC32C of it side by side (two different polynomials,
    64 bits, half the cost of MD5; the string is kept in a user variable between them).
    """
    return (f"SELECT COUNT(*), {_hash_sum(columns, kind)} FROM {quote(table)}"
            + (f" WHERE {where}" if where else ""))


def census_sql(table: str, columns: list[Column], where: str = "", kind: str = "",
               flavor: str = "mariadb") -> str | None:
    """What a chunk's copy needs to know first, in one scan: `COUNT(*)`, the checksum sum
    as `checksum_sql` computes it (0 when `kind` is ""), and how many rows hold a string
    the CLIENT format prints as `NULL`. None when there is nothing to ask but the count.
    """
    test = null_word_test([c for c in columns if not c.generated], flavor)
    if not kind and not test:
        return None
    total = _hash_sum(columns, kind) if kind else "0"
    words = f"COALESCE(SUM({test}), 0)" if test else "0"
    return (f"SELECT COUNT(*), {total}, {words} FROM {quote(table)}"
            + (f" WHERE {where}" if where else ""))
