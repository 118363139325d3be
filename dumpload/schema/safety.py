"""Every safety verdict of the structure plan, in one place: (safe, reason) per change.

Widening keeps every value; narrowing, dropping ENUM/SET values, charset changes that may
lose characters or overflow byte limits, and changes across type families may lose data.
Dropping a table or a stored column, turning a stored column into a generated one (or
back), changing the engine and dropping a foreign key that cannot be re-created lose data
or behaviour. `diff` asks here; it decides nothing about safety itself. Pure."""

from __future__ import annotations

import re

from dumpload.schema.model import Column, Table

_INT_BYTES = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}
_TEXT_SIZE = {"tinytext": 1, "text": 2, "mediumtext": 3, "longtext": 4, "json": 4}
_BLOB_SIZE = {"tinyblob": 1, "blob": 2, "mediumblob": 3, "longblob": 4}
_STRING_MAX = {"tinytext": 255, "text": 65535, "mediumtext": 16777215, "longtext": 4294967295}
# Charsets every value of which utf8mb4 can hold.
_TO_UTF8MB4 = {"ascii", "latin1", "utf8mb3", "utf8", "ucs2", "utf16", "utf16le", "utf32"}
# How many bytes one byte of text in that charset can become in utf8mb4 (worst case):
# latin1 is cp1252 in MySQL, whose 0x80 is U+20AC, three bytes in UTF-8; a UCS-2/UTF-16
# code unit of two bytes becomes at most three.
_UTF8MB4_GROWTH = {"ascii": 1.0, "latin1": 3.0, "utf8mb3": 1.0, "utf8": 1.0, "utf8mb4": 1.0,
                   "ucs2": 1.5, "utf16": 1.5, "utf16le": 1.5, "utf32": 1.0}
# Bytes per character at most (the server's mbmaxlen); unlisted single-byte charsets: 1.
MBMAXLEN = {"utf8mb4": 4, "utf8mb3": 3, "utf8": 3, "ucs2": 2, "utf16": 4, "utf16le": 4,
            "utf32": 4, "gbk": 2, "big5": 2, "sjis": 2, "cp932": 2, "euckr": 2, "gb2312": 2,
            "ujis": 3, "eucjpms": 3, "gb18030": 4}
ROW_LIMIT = 65535          # bytes of all VARCHAR columns of a row (MySQL/MariaDB)
KEY_PART_LIMIT = 3072      # bytes of an InnoDB index key (DYNAMIC/COMPRESSED row format)


def _parse(ctype: str) -> tuple[str, list[str], bool]:
    """`decimal(10,2) unsigned` → ("decimal", ["10", "2"], True)."""
    match = re.match(r"^(\w+)\s*(?:\((.*)\))?\s*(.*)$", ctype, re.S)
    if not match:
        return ctype, [], False
    base, args, rest = match.group(1).lower(), match.group(2), match.group(3).lower()
    values = _split_values(args) if base in ("enum", "set") else \
        [a.strip() for a in (args or "").split(",") if a.strip()]
    return base, values, "unsigned" in rest


def _split_values(args: str | None) -> list[str]:
    return re.findall(r"'((?:[^']|'')*)'", args or "")


def type_change_safety(old: str, new: str) -> tuple[bool, str]:
    if old == new:
        return True, ""
    ob, oa, ou = _parse(old)
    nb, na, nu = _parse(new)
    checks = (_int_change, _decimal_change, _string_change, _enum_change, _time_change,
              _float_change)
    for check in checks:
        verdict = check(ob, oa, ou, nb, na, nu)
        if verdict is not None:
            return verdict
    return False, f"type change {old} → {new} may lose or alter data"


def _int_change(ob: str, oa: list[str], ou: bool, nb: str, na: list[str],
                nu: bool) -> tuple[bool, str] | None:
    if ob not in _INT_BYTES or nb not in _INT_BYTES:
        return None
    ob_, nb_ = _INT_BYTES[ob], _INT_BYTES[nb]
    if ou and not nu:
        ok = nb_ > ob_
    elif nu and not ou:
        return False, f"{ob} → {nb} unsigned: negative values would not fit"
    else:
        ok = nb_ >= ob_
    return (True, f"widen {ob} → {nb}") if ok else (False, f"narrow {ob} → {nb}: values may "
                                                    "not fit")


def _decimal_change(ob: str, oa: list[str], ou: bool, nb: str, na: list[str],
                    nu: bool) -> tuple[bool, str] | None:
    if ob not in ("decimal", "numeric") or nb not in ("decimal", "numeric"):
        return None
    op, os_ = (int(oa[0]) if oa else 10), (int(oa[1]) if len(oa) > 1 else 0)
    np_, ns = (int(na[0]) if na else 10), (int(na[1]) if len(na) > 1 else 0)
    if ns >= os_ and np_ - ns >= op - os_ and not (nu and not ou):
        return True, f"widen decimal({op},{os_}) → decimal({np_},{ns})"
    return False, (f"narrow decimal({op},{os_}) → decimal({np_},{ns}): values may be rounded "
                   "or not fit")


def _string_len(base: str, args: list[str]) -> int | None:
    if base in ("char", "varchar", "binary", "varbinary"):
        return int(args[0]) if args else 1
    return _STRING_MAX.get(base) or {"tinyblob": 255, "blob": 65535, "mediumblob": 16777215,
                                     "longblob": 4294967295}.get(base)


def _string_change(ob: str, oa: list[str], ou: bool, nb: str, na: list[str],
                   nu: bool) -> tuple[bool, str] | None:
    texty = ("char", "varchar", *_TEXT_SIZE)
    binary = ("binary", "varbinary", *_BLOB_SIZE)
    if not ((ob in texty and nb in texty) or (ob in binary and nb in binary)):
        return None
    if nb == "json" and ob != "json":
        return True, f"{ob} → json (fails if a value is not valid JSON)"
    if ob == "json":
        return True, "json → text keeps every value"
    old_len, new_len = _string_len(ob, oa), _string_len(nb, na)
    if new_len is not None and old_len is not None and new_len >= old_len:
        if ob == "varchar" and nb == "char" or ob == "varbinary" and nb == "binary":
            return False, f"{ob} → {nb}: trailing spaces/bytes change"
        return True, f"widen {ob} → {nb}"
    return False, f"narrow {ob}({old_len}) → {nb}({new_len}): longer values would be cut"


def _enum_change(ob: str, oa: list[str], ou: bool, nb: str, na: list[str],
                 nu: bool) -> tuple[bool, str] | None:
    if ob not in ("enum", "set") or nb != ob:
        return None
    removed = [v for v in oa if v not in na]
    if removed:
        return False, f"{ob} values removed: {', '.join(removed)}"
    if ob == "set" and na[:len(oa)] != oa:
        return False, "set values reordered: stored bitmaps would change meaning"
    return True, f"{ob} values added"


def _time_change(ob: str, oa: list[str], ou: bool, nb: str, na: list[str],
                 nu: bool) -> tuple[bool, str] | None:
    if ob not in ("datetime", "timestamp", "time") or nb not in ("datetime", "timestamp", "time"):
        return None
    op, np_ = (int(oa[0]) if oa else 0), (int(na[0]) if na else 0)
    if ob == nb or (ob == "timestamp" and nb == "datetime"):
        if np_ >= op:
            return True, f"widen {ob}({op}) → {nb}({np_})"
        return False, f"lower fractional precision {op} → {np_}: values are rounded"
    return False, f"{ob} → {nb} may change values"


def _float_change(ob: str, oa: list[str], ou: bool, nb: str, na: list[str],
                  nu: bool) -> tuple[bool, str] | None:
    if ob == "float" and nb == "double":
        return True, "widen float → double"
    if ob in _INT_BYTES and nb in ("decimal", "numeric"):
        digits = {1: 3, 2: 5, 3: 8, 4: 10, 8: 20}[_INT_BYTES[ob]]
        p, s = (int(na[0]) if na else 10), (int(na[1]) if len(na) > 1 else 0)
        if p - s >= digits:
            return True, f"{ob} → decimal({p},{s}) holds every value"
    return None


def charset_change_safety(old: str | None, new: str | None) -> tuple[bool, str]:
    """Can every character of `old` be written in `new`? (Byte limits: `_byte_limits`.)"""
    if old == new or old is None or new is None:
        return True, ""
    if new == "utf8mb4" and old in _TO_UTF8MB4:
        return True, f"charset {old} → utf8mb4 keeps every character"
    return False, f"charset change {old} → {new} may lose characters"


def mbmaxlen(charset: str | None) -> int:
    return MBMAXLEN.get(charset or "", 1)


def _byte_limits(old: Column, new: Column, table: Table | None) -> str | None:
    """Why the new column cannot provably hold every old value in bytes, or None.

    TEXT types count bytes: latin1 TEXT → utf8mb4 TEXT can overflow 65535 bytes. VARCHAR
    counts characters, but a row's VARCHARs share 65535 bytes and an index key part has at
    most 3072 (Skeema's rules)."""
    if old.charset == new.charset or not new.charset or not old.charset:
        return None
    ob, oa, _ = _parse(old.type)
    nb, na, _ = _parse(new.type)
    if ob in _STRING_MAX and nb in _STRING_MAX:
        growth = _UTF8MB4_GROWTH.get(old.charset, float(mbmaxlen(new.charset))) \
            if new.charset == "utf8mb4" else float(mbmaxlen(new.charset))
        if _STRING_MAX[ob] * growth > _STRING_MAX[nb]:
            return (f"{old.charset} {ob} → {new.charset} {nb}: a full value can need "
                    f"{int(_STRING_MAX[ob] * growth)} bytes, more than {nb}'s {_STRING_MAX[nb]}")
    if nb in ("varchar", "char") and na:
        chars = int(na[0])
        if chars * mbmaxlen(new.charset) > ROW_LIMIT:
            return (f"{nb}({chars}) in {new.charset} needs up to {chars * mbmaxlen(new.charset)} "
                    f"bytes, over the {ROW_LIMIT}-byte row limit")
        return _key_limit(new, chars, table)
    return None


def _key_limit(new: Column, chars: int, table: Table | None) -> str | None:
    for index in table.indexes if table else ():
        if index.kind in ("FULLTEXT", "SPATIAL"):
            continue
        for part in index.parts:
            if part.column == new.name:
                size = (part.sub_part or chars) * mbmaxlen(new.charset)
                if size > KEY_PART_LIMIT:
                    return (f"index {index.name} on {new.name} would need {size} bytes in "
                            f"{new.charset}, over InnoDB's {KEY_PART_LIMIT}-byte key limit")
    return None


def column_change_safety(old: Column, new: Column,
                         table: Table | None = None) -> tuple[bool, str]:
    """(safe, reason) for turning the target's `old` column into the source's `new`;
    `table` is the new table (for index key limits)."""
    reasons = []
    safe, why = type_change_safety(old.type, new.type)
    if why:
        reasons.append(why)
    if old.type != "json" and new.type != "json":
        ok, cwhy = charset_change_safety(old.charset, new.charset)
        overflow = _byte_limits(old, new, table) if ok else None
        safe = safe and ok and overflow is None
        if overflow:
            reasons.append(overflow)
        elif cwhy:
            reasons.append(cwhy)
    if old.collation != new.collation and old.charset == new.charset:
        reasons.append(f"collation {old.collation} → {new.collation}")
    if old.nullable and not new.nullable:
        reasons.append("NULL → NOT NULL (fails if a row holds NULL)")
    for label, a, b in (("default", old.default, new.default), ("comment", old.comment,
                        new.comment), ("on update", old.on_update, new.on_update),
                        ("auto_increment", old.auto_increment, new.auto_increment),
                        ("invisible", old.invisible, new.invisible),
                        ("check", old.check, new.check)):
        if a != b:
            reasons.append(f"{label} changed")
    if not old.nullable and new.nullable:
        reasons.append("NOT NULL → NULL")
    return safe, "; ".join(reasons) or "column definition changed"


Verdict = tuple[bool, str]


def drop_table_safety(table: Table) -> Verdict:
    return False, "table only in target: dropping loses its rows"


def drop_column_safety(col: Column) -> Verdict:
    if col.generated is not None:
        return True, "drop generated column"
    return False, ("column only in target: dropping loses its values (a rename looks like "
                   "this too)")


def recreate_column_safety(old: Column, new: Column) -> Verdict:
    """A column dropped and added again (a generated column's definition changes)."""
    if old.generated is None:
        return False, "stored column becomes generated: its current values are lost"
    if new.generated is None:
        return False, "generated column becomes stored: computed values are not kept"
    return True, "generated column re-created (values are computed)"


def engine_change_safety(old: str | None, new: str | None) -> Verdict:
    return False, (f"engine change {old} → {new} rebuilds the table and may drop features "
                   "(foreign keys, transactions, fulltext)")


def outside_fk_safety(child: str, parent: str, fits: bool) -> Verdict:
    """A FK of a table outside the selection, dropped around a change of its parent."""
    if fits:
        return True, f"re-created around a change of {parent}"
    return False, (f"{child} is outside the selection and its columns no longer match the new "
                   f"type of {parent}: the foreign key is dropped")


def drop_partition_safety(why: str) -> Verdict:
    return False, f"dropping a partition deletes its rows ({why})"
