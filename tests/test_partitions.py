"""Partitioned tables against real servers: the data copy keeps the partitioning, a change is
planned and applied in place, and a clause dumpload cannot model is refused."""

from __future__ import annotations

import json

from tests.support import TestEnv, table_digest

RANGE_TABLE = """CREATE TABLE ev (id BIGINT NOT NULL, day DATE NOT NULL, note VARCHAR(40),
  v DOUBLE, PRIMARY KEY (id, day), UNIQUE KEY ux (day, id), KEY ix_note (note))
  PARTITION BY RANGE COLUMNS (day) (PARTITION p2023 VALUES LESS THAN ('2024-01-01'),
  PARTITION p2024 VALUES LESS THAN ('2025-01-01'), PARTITION pmax VALUES LESS THAN (MAXVALUE))"""
KEY_TABLE = """CREATE TABLE kt (a VARCHAR(10) NOT NULL, b INT NOT NULL, c BLOB,
  UNIQUE KEY uk (a, b)) PARTITION BY KEY () PARTITIONS 3"""


def partitions(server: object, db: str, table: str) -> list[tuple]:
    return server.sql(db, "SELECT PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, "  # type: ignore[attr-defined]
                      "PARTITION_EXPRESSION, PARTITION_DESCRIPTION, TABLE_ROWS "
                      "FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() "
                      f"AND TABLE_NAME = '{table}' ORDER BY PARTITION_ORDINAL_POSITION, "
                      "SUBPARTITION_ORDINAL_POSITION")


def test_data_copy_of_partitioned_tables_is_exact_and_keeps_partitioning(env: TestEnv) -> None:
    for run in (env.src, env.dst):
        run(RANGE_TABLE, KEY_TABLE)
    env.src("INSERT INTO ev SELECT seq, '2023-01-01' + INTERVAL (seq % 1000) DAY, "
            "IF(seq % 7 = 0, NULL, CONCAT('n', seq)), seq / 3 FROM seq_1_to_30000",
            "INSERT INTO kt SELECT CONCAT('k', seq % 97), seq, IF(seq % 5, UNHEX(MD5(seq)), "
            "NULL) FROM seq_1_to_5000", "ANALYZE TABLE ev, kt")
    env.dst("INSERT INTO ev VALUES (1, '2024-05-05', 'old', 0)")
    before = {t: partitions(env.target, env.database, t)[:1] for t in ("ev", "kt")}
    env.write_config(threads=3)
    result = env.run("data", "--yes", "--no-backup", "--threads", "3")
    assert result.exit_code == 0, result.output
    for table in ("ev", "kt"):
        assert table_digest(env.source, env.database, table) == table_digest(
            env.target, env.database, table), table
        # Same partitions as before, and every row in its own partition.
        after = partitions(env.target, env.database, table)
        assert [r[:5] for r in after] == [r[:5] for r in partitions(env.source, env.database,
                                                                     table)]
        assert after[0][:5] == before[table][0][:5]
    counts = env.dst("SELECT (SELECT COUNT(*) FROM ev PARTITION (p2023)), "
                     "(SELECT COUNT(*) FROM ev WHERE day < '2024-01-01')")
    assert counts[0][0] == counts[0][1] > 0
    assert env.run("verify").exit_code == 0


def test_partition_change_is_planned_in_place_and_applied(env: TestEnv) -> None:
    env.src(RANGE_TABLE.replace("PARTITION pmax VALUES LESS THAN (MAXVALUE)",
                                "PARTITION p2025 VALUES LESS THAN ('2026-01-01'), "
                                "PARTITION pmax VALUES LESS THAN (MAXVALUE)"))
    env.dst(RANGE_TABLE, "INSERT INTO ev VALUES (1, '2023-03-03', 'a', 1), "
            "(2, '2025-06-06', 'b', 2), (3, '2031-01-01', NULL, 3)")
    digest = table_digest(env.target, env.database, "ev")
    analyze = env.run("analyze", "--json")
    assert analyze.exit_code == 1
    plan = json.loads(analyze.stdout)
    assert plan["statements"] == [
        "ALTER TABLE `ev` REORGANIZE PARTITION `pmax` INTO (PARTITION `p2025` VALUES LESS THAN "
        "('2026-01-01'), PARTITION `pmax` VALUES LESS THAN (MAXVALUE))"]
    assert [c["kind"] for c in plan["changes"]] == ["reorganize_partition"]
    assert plan["unsafe"] == []
    human = env.run("analyze")
    assert "partition p2025: missing in target" in human.output
    result = env.run("structure", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    assert env.run("analyze").exit_code == 0
    assert table_digest(env.target, env.database, "ev") == digest
    assert env.dst("SELECT id FROM ev PARTITION (p2025)") == [(2,)]


def test_drop_partition_needs_allow_unsafe(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY) PARTITION BY RANGE (id) "
            "(PARTITION p0 VALUES LESS THAN (10))")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY) PARTITION BY RANGE (id) "
            "(PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN (20))",
            "INSERT INTO t VALUES (1), (15)")
    refused = env.run("structure", "--yes", "--no-backup")
    assert refused.exit_code == 5
    assert "drop_partition p1" in refused.output and "deletes its rows" in refused.output
    assert env.dst("SELECT COUNT(*) FROM t") == [(2,)]
    done = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
    assert done.exit_code == 0, done.output
    assert env.dst("SELECT id FROM t") == [(1,)]


def test_unmodelled_partition_clause_is_refused_not_ignored(env: TestEnv, tmp_path: object) -> None:
    folder = str(tmp_path)
    env.src(f"CREATE TABLE dd (x INT) PARTITION BY HASH (x) (PARTITION a DATA DIRECTORY = "
            f"'{folder}', PARTITION b)")
    env.dst("CREATE TABLE dd (x INT) PARTITION BY HASH (x) (PARTITION a, PARTITION b)")
    env.src("CREATE TABLE ok (id INT PRIMARY KEY)")
    analyze = env.run("analyze", "--json")
    assert analyze.exit_code == 1
    plan = json.loads(analyze.stdout)
    clause = f"not supported: PARTITION `a` DATA DIRECTORY = '{folder}'"
    assert plan["refused"] == [f"dd: {clause}"]
    assert plan["statements"] == ["CREATE TABLE `ok` (\n  `id` int(11) NOT NULL,\n  PRIMARY KEY "
                                  "(`id`)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
                                  "COLLATE=utf8mb4_general_ci"]
    for command in (("structure", "--yes", "--no-backup", "--allow-unsafe"),
                    ("sync", "--yes", "--allow-unsafe")):
        result = env.run(*command)
        assert result.exit_code == 5, result.output
        assert clause in result.output
    assert env.dst("SHOW TABLES") == [("dd",)]      # nothing written, not even `ok`
