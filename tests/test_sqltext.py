"""Value elision for statements and messages quoted in errors and logs (pure)."""

from __future__ import annotations

import pytest

from dumpload.sqltext import STATEMENT_KEEP, elide_message, elide_values


@pytest.mark.parametrize(("sql", "expected"), [
    ("INSERT INTO `t` VALUES (1,'a',NULL)", "INSERT INTO `t` VALUES (?,?,NULL)"),
    # quotes inside strings: doubled, backslash-escaped, the other kind of quote
    ("SELECT 'it''s', 'a\\'b', 'x\"y', \"d\"\"q\", \"e\\\"f\"", "SELECT ?, ?, ?, ?, ?"),
    ("SELECT 'a\\\\' , 'b'", "SELECT ? , ?"),  # an escaped backslash ends the string
    # identifiers that look like strings or numbers are names, kept as they are
    ("UPDATE `'secret'` SET `1` = 2, `a``'b` = 'c'", "UPDATE `'secret'` SET `1` = ?, `a``'b` = ?"),
    ("SELECT t1.c2, @@max_connections, @v FROM t1", "SELECT t1.c2, @@max_connections, @v FROM t1"),
    # hex and bit literals in both spellings, numbers of every shape
    ("VALUES (X'DEADBEEF', x'00', 0xCAFE, B'0101', b'1', 0b11)", "VALUES (?, ?, ?, ?, ?, ?)"),
    ("VALUES (-42, 3.14, .5, 1e-3, 6.02E+23, 7.)", "VALUES (-?, ?, ?, ?, ?, ?)"),
    # charset introducers and collations
    ("SELECT _utf8mb4'v' COLLATE utf8mb4_bin, _binary 'w'", "SELECT ? COLLATE utf8mb4_bin, ?"),
    # literals in comments and placeholders
    ("SELECT 1 /* 'x' */ -- 'y'\nFROM t WHERE a = %s", "SELECT ? /* ? */ -- ? FROM t WHERE a = %s"),
    ("INSERT INTO t VALUES ('never closed", "INSERT INTO t VALUES (?"),
])
def test_elide_values(sql: str, expected: str) -> None:
    assert elide_values(sql) == expected


def test_elide_values_keeps_the_first_200_characters() -> None:
    sql = "INSERT INTO `orders` (`id`, `note`) VALUES " + ", ".join(
        f"({i}, 'secret-{i}')" for i in range(10_000))
    out = elide_values(sql)
    assert out.startswith("INSERT INTO `orders` (`id`, `note`) VALUES (?, ?), (?, ?)")
    assert out.endswith("…") and len(out) == STATEMENT_KEEP + 1
    assert "secret" not in out and "1" not in out


def test_a_long_literal_is_elided_not_cut() -> None:
    out = elide_values("INSERT INTO t VALUES ('" + "s" * 10_000 + "', 1)")
    assert "s" not in out.replace("INSERT", "").replace("VALUES", "")
    assert out.startswith("INSERT INTO t VALUES (?")


@pytest.mark.parametrize(("message", "expected"), [
    ("ERROR 1062 (23000) at line 45: Duplicate entry 'v1' for key 'PRIMARY'",
     "ERROR 1062 (23000) at line 45: Duplicate entry ? for key 'PRIMARY'"),
    ("Duplicate entry 'x' for key 'y' for key 'uq'", "Duplicate entry ? for key 'uq'"),
    ("Incorrect integer value: 'abc' for column `db`.`t`.`c` at row 1",
     "Incorrect integer value: ? for column `db`.`t`.`c` at row 1"),
    ("Incorrect string value: '\\xF0\\x9F\\x98' for column 'c' at row 2",
     "Incorrect string value: ? for column 'c' at row 2"),
    ("Truncated incorrect DOUBLE value: 'zz'", "Truncated incorrect DOUBLE value: ?"),
    ("Foreign key constraint for table 'p', record 'k-1' would lead to a duplicate entry",
     "Foreign key constraint for table 'p', record ? would lead to a duplicate entry"),
    ("You have an error in your SQL syntax; check the manual for the right syntax to use "
     "near 'VALUES ('secret', 5)' at line 1",
     "You have an error in your SQL syntax; check the manual for the right syntax to use "
     "near 'VALUES (?, ?)' at line 1"),
    ("mariadb-dump: Couldn't execute 'SELECT * FROM `t` WHERE a='v'': Lost connection (2013)",
     "mariadb-dump: Couldn't execute 'SELECT * FROM `t` WHERE a=?': Lost connection (2013)"),
    # messages without values are left alone
    ("Data too long for column 'c' at row 1", "Data too long for column 'c' at row 1"),
    ("Table 'db.t' doesn't exist", "Table 'db.t' doesn't exist"),
    ("line one: Duplicate entry 'a' for key 'k'\nline two: value: 'b' for column `c`",
     "line one: Duplicate entry ? for key 'k'\nline two: value: ? for column `c`"),
])
def test_elide_message(message: str, expected: str) -> None:
    assert elide_message(message) == expected


def test_elide_message_elides_a_statement_the_client_echoes() -> None:
    stderr = ("--------------\nINSERT INTO `t` VALUES\n('s3cret',1),\n('s3cret',1)\n"
              "--------------\n\nERROR 1062 (23000) at line 30: Duplicate entry 's3cret' "
              "for key 'PRIMARY'")
    out = elide_message(stderr)
    assert "s3cret" not in out
    assert out.startswith("--------------\nINSERT INTO `t` VALUES (?,?), (?,?)\n-----")
    assert out.endswith("Duplicate entry ? for key 'PRIMARY'")
    # a tail cut before the closing dashes still loses its values
    assert "s3cret" not in elide_message("--------------\nINSERT INTO t VALUES ('s3cret'")
