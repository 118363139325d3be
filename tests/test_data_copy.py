"""`dumpload data` against real servers: exactness corpus, FKs, dry run, structure refusal."""

from __future__ import annotations

import json

import pytest

from tests.support import TestEnv, table_digest

CORPUS = """
CREATE TABLE `corpus` (
  id INT NOT NULL PRIMARY KEY,
  s VARCHAR(100) NULL,
  t TEXT NULL,
  b BLOB NULL,
  bin BINARY(4) NULL,
  vb VARBINARY(300) NULL,
  l1 VARCHAR(50) CHARACTER SET latin1 NULL,
  u2 VARCHAR(20) CHARACTER SET ucs2 NULL,
  u16 VARCHAR(20) CHARACTER SET utf16 NULL,
  d DATE NULL, dt DATETIME(6) NULL, ts TIMESTAMP(3) NULL DEFAULT NULL, tm TIME(2) NULL,
  y YEAR NULL,
  dec65 DECIMAL(65,30) NULL,
  f FLOAT NULL, dbl DOUBLE NULL,
  b1 BIT(1) NULL, b64 BIT(64) NULL,
  j JSON NULL,
  e ENUM('a','b','c') NULL, st SET('x','y','z') NULL,
  g GEOMETRY NULL, pt POINT NULL,
  gen INT AS (id * 2) VIRTUAL,
  gens VARCHAR(120) AS (CONCAT(IFNULL(s, ''), '!')) STORED,
  inv INT INVISIBLE DEFAULT 7,
  big LONGBLOB NULL,
  `select` INT NULL,
  `we ird``col` VARCHAR(10) NULL,
  KEY ix_s (s), UNIQUE KEY ux_vb (vb(20)), KEY ix_dt (dt)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

ROWS = [
    "INSERT INTO corpus (id, s, t) VALUES (1, NULL, NULL), (2, '', ''), (3, 'NULL', 'NULL'), "
    "(4, '\\\\N', '\\\\N'), (5, 'N', '\\\\')",
    "INSERT INTO corpus (id, s, t) VALUES (6, 'tab\\there', 'nl\\nhere\\r\\nand\\rcr'), "
    "(7, 'quote''s \"dq\"', 'nul\\0byte'), (8, 'back\\\\slash\\\\', '\\\\t\\\\n literal')",
    "INSERT INTO corpus (id, b) VALUES (9, (SELECT GROUP_CONCAT(CHAR(seq) SEPARATOR '') "
    "FROM seq_0_to_255))",
    "INSERT INTO corpus (id, bin, vb) VALUES (10, X'00090A5C', X'0A0D095C4E00FF'), "
    "(11, X'FFFFFFFF', '')",
    "INSERT INTO corpus (id, s, l1, u2, u16) VALUES (12, 'emoji 😀 𝄞 中文', "
    "CONVERT('café ñ ß' USING latin1), 'ucs\\t\\\\2 é', 'u16 😀 \\n x')",
    "INSERT INTO corpus (id, d, dt, ts, tm, y) VALUES (13, '0000-00-00', "
    "'0000-00-00 00:00:00', '1970-01-01 00:00:01.123', '-838:59:59', 0), "
    "(14, '9999-12-31', '2024-02-29 23:59:59.999999', '2038-01-19 03:14:07.999', "
    "'838:59:59.99', 2155), (15, '2000-00-00', '2000-01-00 10:00:00', NULL, '00:00:00', 1901)",
    "INSERT INTO corpus (id, dec65) VALUES "
    "(16, 99999999999999999999999999999999999.999999999999999999999999999999), "
    "(17, -99999999999999999999999999999999999.999999999999999999999999999999), "
    "(18, 0.000000000000000000000000000001)",
    "INSERT INTO corpus (id, f, dbl) VALUES (19, 3.4028234663852886e38, "
    "1.7976931348623157e308), (20, 1.1754943508222875e-38, 2.2250738585072014e-308), "
    "(21, -3.4028234663852886e38, 4.9406564584124654e-324), (22, 0.1, 0.1), "
    "(23, 1.4012984643248171e-45, -1.7976931348623157e308), (24, 16777217, 0.3333333333333333)",
    "INSERT INTO corpus (id, b1, b64) VALUES (25, b'1', b'1111111111111111111111111111111111"
    "111111111111111111111111111111'), (26, b'0', b'0'), (27, b'1', 9223372036854775808)",
    "INSERT INTO corpus (id, j, e, st) VALUES (28, '{\"a\": [1, 2.5, \"x\\\\ty\"], \"b\": null}', "
    "'b', 'x,z'), (29, '[]', 'a', ''), (30, '\"\"', NULL, 'x,y,z')",
    "INSERT INTO corpus (id, g, pt) VALUES (31, ST_GeomFromText('POLYGON((0 0,10 0,10 10,0 0))'),"
    " POINT(1.5, -2.25)), (32, ST_GeomFromText('POINT(1 1)', 4326), POINT(0, 0))",
    "INSERT INTO corpus (id, inv, `select`, `we ird``col`) VALUES (33, 42, 1, 'we\\tird')",
    "INSERT INTO corpus (id, big) VALUES (34, REPEAT(CONCAT('0123456789\\t\\n\\\\', CHAR(0)), "
    "300000))",
]

NO_PK = """CREATE TABLE `odd name ``quoted`` and select` (
  `group` VARCHAR(10) NULL, `order` INT NULL, note TEXT NULL) ENGINE=InnoDB"""
NO_PK_ROWS = ("INSERT INTO `odd name ``quoted`` and select` VALUES ('a', 1, NULL), "
              "('a', 1, NULL), ('a', 1, NULL), ('b', NULL, ''), (NULL, 2, 'x')")


def _both(env: TestEnv, *sql: str) -> None:
    env.src(*sql)
    env.dst(*sql)


def _digests(env: TestEnv, table: str) -> tuple[tuple, tuple]:
    return (table_digest(env.source, env.database, table),
            table_digest(env.target, env.database, table))


def _no_work_tables(env: TestEnv) -> None:
    rows = env.dst(f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                   f"'{env.database}' AND TABLE_NAME LIKE '\\_dl\\_%'")
    assert rows == []


@pytest.mark.parametrize("strategy", ["in-place", "shadow"])
def test_corpus_round_trips_byte_for_byte(env: TestEnv, strategy: str) -> None:
    if strategy == "shadow":
        env.write_config(in_place_max_mb=0)
    _both(env, CORPUS, NO_PK)
    env.src(*ROWS, NO_PK_ROWS)
    env.dst("INSERT INTO corpus (id, s) VALUES (1, 'old'), (999, 'gone')")
    result = env.run("data", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    for table in ("corpus", "odd name `quoted` and select"):
        src, dst = _digests(env, table)
        assert src == dst, table
    assert env.dst("SELECT COUNT(*) FROM `odd name ``quoted`` and select`") == [(5,)]
    # Invisible and generated columns: values carried / recomputed.
    assert env.dst("SELECT inv, gen, gens FROM corpus WHERE id = 33") == [(42, 66, '!')]
    # The structure is untouched: indexes back, same definition.
    create = env.dst("SHOW CREATE TABLE corpus")[0][1]
    assert create == env.src("SHOW CREATE TABLE corpus")[0][1].replace(
        "AUTO_INCREMENT", "AUTO_INCREMENT")
    _no_work_tables(env)
    # performance_metrics.log: one line per table, with the phases.
    lines = (env.folder / "logs" / "performance_metrics.log").read_text().splitlines()
    events = [json.loads(ln) for ln in lines]
    corpus = next(e for e in events if e["table"] == "corpus")
    assert corpus["rows"] == 34 and corpus["bytes"] > 0
    if strategy == "shadow":
        assert set(corpus["seconds"]) >= {"extract_load", "index_build", "swap", "verify"}
    else:
        assert set(corpus["seconds"]) == {"in_place"}


NULL_WORDS = """CREATE TABLE words (
  id INT NOT NULL PRIMARY KEY,
  s VARCHAR(20) NOT NULL, n VARCHAR(20) NULL, c4 CHAR(4) NULL, c3 CHAR(3) NULL,
  l1 VARCHAR(10) CHARACTER SET latin1 NULL, b BLOB NULL, vb VARBINARY(8) NOT NULL,
  e ENUM('NULL', 'x') NULL, st SET('null', 'y') NULL, j JSON NULL, i INT NULL,
  d DATETIME NULL, u2 VARCHAR(8) CHARACTER SET ucs2 NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


def test_strings_that_print_as_the_word_null_stay_strings(env: TestEnv) -> None:
    # The copy's client prints an SQL NULL as the word NULL: rows holding the string
    # 'NULL' take a separate, prefixed path. Mixed with ordinary rows, over many chunks.
    _both(env, NULL_WORDS)
    env.src("INSERT INTO words SELECT seq, CONCAT('s', seq), IF(seq % 3, NULL, 'n'), NULL, "
            "NULL, NULL, NULL, 'v', NULL, NULL, NULL, IF(seq % 2, NULL, seq), NULL, NULL "
            "FROM seq_1_to_30000",
            "UPDATE words SET s = 'NULL' WHERE id = 5",
            "UPDATE words SET n = 'NULL', c4 = 'NULL', c3 = 'NUL' WHERE id = 9000",
            "UPDATE words SET l1 = 'NULL', b = 'NULL', vb = 'NULL' WHERE id = 25000",
            "UPDATE words SET n = '~NULL', c4 = '~', b = '~' WHERE id = 25001",
            "UPDATE words SET n = 'null', e = 'NULL', st = 'null' WHERE id = 29999",
            "UPDATE words SET n = 'NULL ', j = '\"NULL\"', u2 = 'NULL' WHERE id = 30000",
            "ANALYZE TABLE words")
    env.dst("INSERT INTO words (id, s, vb) VALUES (1, 'old', 'old')")
    env.write_config(threads=3, in_place_max_mb=0)  # the shadow path's chunks
    result = env.run("data", "--yes", "--no-backup", "--threads", "3")
    assert result.exit_code == 0, result.output
    src, dst = _digests(env, "words")
    assert src == dst
    assert env.dst("SELECT COUNT(*) FROM words WHERE n IS NULL") == env.src(
        "SELECT COUNT(*) FROM words WHERE n IS NULL")
    # Every chunk holds such a row but the middle one: it went in one load, the others in two.
    log = next((env.folder / "logs").glob("replicator_*.log")).read_text()
    loads = [log.count(f"spawn load of words chunk {i}:") for i in range(3)]
    assert loads == [2, 1, 2], loads
    assert env.dst("SELECT s, n, c4, b FROM words WHERE id IN (5, 9000, 25001) ORDER BY id") == [
        ("NULL", None, None, None), ("s9000", "NULL", "NULL", None),
        ("s25001", "~NULL", "~", b"~")]


def test_chunks_of_a_large_table_and_string_keys(env: TestEnv) -> None:
    _both(env, "CREATE TABLE big (id BIGINT PRIMARY KEY, v VARCHAR(40), KEY ix_v (v))",
          "CREATE TABLE skey (a VARCHAR(20) COLLATE utf8mb4_general_ci NOT NULL, "
          "b INT NOT NULL, v TEXT, PRIMARY KEY (a, b))")
    env.src("INSERT INTO big SELECT seq * 3, MD5(seq) FROM seq_1_to_60000",
            "INSERT INTO skey SELECT CONCAT(CHAR(65 + seq % 26), 'k', seq % 1000), seq, "
            "REPEAT('v', seq % 50) FROM seq_1_to_40000",
            "ANALYZE TABLE big, skey")
    env.write_config(threads=3, in_place_max_mb=0)  # the shadow path's key-range chunks
    dry = env.run("data", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    plan = json.loads(dry.stdout[dry.stdout.index("{"):])
    assert {t["table"]: t["chunks"] > 1 for t in plan["tables"]} == {"big": True, "skey": True}
    assert env.dst("SELECT COUNT(*) FROM big") == [(0,)]  # dry run wrote nothing
    result = env.run("data", "--yes", "--no-backup", "--threads", "3")
    assert result.exit_code == 0, result.output
    for table in ("big", "skey"):
        src, dst = _digests(env, table)
        assert src == dst


def test_parent_and_child_copied_together_keep_their_foreign_keys(env: TestEnv) -> None:
    ddl = ("CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(10))",
           "CREATE TABLE child (id INT PRIMARY KEY, pid INT, KEY ix_pid (pid), "
           "CONSTRAINT fk_child_parent FOREIGN KEY (pid) REFERENCES parent (id) "
           "ON DELETE CASCADE)",
           "CREATE TABLE other (id INT PRIMARY KEY, pid INT, "
           "CONSTRAINT fk_other_parent FOREIGN KEY (pid) REFERENCES parent (id))")
    _both(env, *ddl)
    env.src("INSERT INTO parent VALUES (1, 'a'), (2, 'b'), (3, 'c')",
            "INSERT INTO child VALUES (10, 1), (11, 3), (12, NULL)")
    env.dst("INSERT INTO parent VALUES (1, 'old'), (2, 'old')",
            "INSERT INTO child VALUES (10, 2)", "INSERT INTO other VALUES (1, 1)")
    before = {t: env.dst(f"SHOW CREATE TABLE {t}")[0][1] for t in ("parent", "child", "other")}
    result = env.run("data", "--yes", "--no-backup", "--tables", "parent", "--tables", "child")
    assert result.exit_code == 0, result.output
    assert _digests(env, "child")[0] == _digests(env, "child")[1]
    after = {t: env.dst(f"SHOW CREATE TABLE {t}")[0][1] for t in ("parent", "child", "other")}
    assert after == before  # FK names and targets unchanged, also on the untouched child
    # The FKs are enforced against the new parent table.
    with pytest.raises(Exception, match="foreign key constraint fails"):
        env.dst("INSERT INTO other VALUES (2, 99)")
    env.dst("DELETE FROM parent WHERE id = 3")
    assert env.dst("SELECT COUNT(*) FROM child WHERE pid = 3") == [(0,)]  # cascade works
    _no_work_tables(env)


def test_fk_violation_fails_cleanly_and_keeps_old_rows(env: TestEnv) -> None:
    _both(env, "CREATE TABLE parent (id INT PRIMARY KEY)",
          "CREATE TABLE child (id INT PRIMARY KEY, pid INT, "
          "CONSTRAINT fk_c FOREIGN KEY (pid) REFERENCES parent (id))")
    env.src("INSERT INTO parent VALUES (1)")
    env.dst("INSERT INTO parent VALUES (1), (2)", "INSERT INTO child VALUES (1, 2)")
    result = env.run("data", "--yes", "--no-backup", "--tables", "parent")
    assert result.exit_code == 6, result.output
    assert "fk_c" in result.output
    assert env.dst("SELECT id FROM parent ORDER BY id") == [(1,), (2,)]
    _no_work_tables(env)


def test_different_columns_are_refused_before_writing(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY, a INT, b INT)", "INSERT INTO t VALUES (1,2,3)")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY, a INT)", "INSERT INTO t VALUES (5, 5)")
    result = env.run("data", "--yes", "--no-backup")
    assert result.exit_code == 6
    assert "dumpload structure" in result.output
    assert env.dst("SELECT * FROM t") == [(5, 5)]
    _no_work_tables(env)


def test_refuses_without_confirmation_and_backs_up_by_default(env: TestEnv) -> None:
    _both(env, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    env.src("INSERT INTO t VALUES (1, 1)")
    env.dst("INSERT INTO t VALUES (2, 2)")
    refused = env.run("data")
    assert refused.exit_code == 2
    assert env.dst("SELECT * FROM t") == [(2, 2)]
    result = env.run("data", "--yes")
    assert result.exit_code == 0, result.output
    assert "pre-data" in result.output
    assert list((env.folder / "backups").rglob("*pre-data*.sql.zst"))
    assert env.dst("SELECT * FROM t") == [(1, 1)]
