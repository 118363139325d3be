"""`export` / `import` round trips against real servers, and damaged exports refused."""

from __future__ import annotations

import json
from decimal import Decimal

from tests.support import TestEnv, table_digest
from tests.test_data_copy import CORPUS, NO_PK, NO_PK_ROWS, ROWS

NO_PK_TABLE = "odd name `quoted` and select"


def test_export_import_round_trip(env: TestEnv) -> None:
    env.src(CORPUS, NO_PK, *ROWS, NO_PK_ROWS,
            "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(40), KEY ix_v (v))",
            "INSERT INTO big SELECT seq, MD5(seq) FROM seq_1_to_60000", "ANALYZE TABLE big")
    env.dst(CORPUS, "INSERT INTO corpus (id, s) VALUES (77, 'old')")  # others are missing
    out = env.folder / "export"
    result = env.run("export", "--env", "development", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    by_name = {t["name"]: t for t in manifest["tables"]}
    assert set(by_name) == {"corpus", NO_PK_TABLE, "big"}
    assert by_name["big"]["rows"] == 60000 and len(by_name["big"]["frames"]) > 1
    assert by_name[NO_PK_TABLE]["rows"] == 5
    assert (out / "schema.sql").read_text().count("CREATE TABLE") == 3
    assert all((out / t["file"]).exists() for t in manifest["tables"])
    # The same folder cannot be exported into twice.
    again = env.run("export", "--env", "development", "--out", str(out))
    assert again.exit_code == 6

    dry = env.run("import", str(out), "--env", "production", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert env.dst("SELECT COUNT(*) FROM corpus") == [(1,)]
    result = env.run("import", str(out), "--env", "production", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    for table in ("corpus", NO_PK_TABLE, "big"):
        assert table_digest(env.source, env.database, table) == table_digest(
            env.target, env.database, table), table


def test_import_refuses_a_damaged_file(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (9)")
    out = env.folder / "export"
    assert env.run("export", "--env", "development", "--out", str(out)).exit_code == 0
    data = out / "t.tsv.zst"
    raw = bytearray(data.read_bytes())
    raw[-5] ^= 0xFF
    data.write_bytes(bytes(raw))
    result = env.run("import", str(out), "--env", "production", "--yes", "--no-backup")
    assert result.exit_code == 6
    assert "sha256" in result.output
    assert env.dst("SELECT * FROM t") == [(9,)]


def test_export_import_carries_views_triggers_routines_and_events(env: TestEnv) -> None:
    env.src("CREATE TABLE orders (id INT PRIMARY KEY, total DECIMAL(10,2), note VARCHAR(20)) "
            "PARTITION BY HASH (id) PARTITIONS 2",
            "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, msg VARCHAR(50))",
            "INSERT INTO orders VALUES (1, 9.99, 'a;b'), (2, NULL, NULL)",
            "CREATE FUNCTION with_vat(p DECIMAL(10,2)) RETURNS DECIMAL(12,2) DETERMINISTIC "
            "RETURN p * 1.2",
            "CREATE VIEW gross AS SELECT id, with_vat(total) AS g FROM orders",
            "CREATE VIEW big_gross AS SELECT * FROM gross WHERE g > 5",
            "SET sql_mode = 'ANSI_QUOTES'",
            "CREATE TRIGGER orders_ai AFTER INSERT ON orders FOR EACH ROW BEGIN\n"
            "  INSERT INTO audit (msg) VALUES (CONCAT('new ', NEW.id, ';'));\nEND",
            "CREATE PROCEDURE recent(IN n INT) BEGIN\n  SELECT \"id\" FROM orders ORDER BY 1 "
            "DESC LIMIT n;\nEND",
            "SET sql_mode = DEFAULT",
            "CREATE EVENT purge_audit ON SCHEDULE EVERY 1 DAY STARTS '2031-01-01 00:00:00' DISABLE "
            "DO DELETE FROM audit")
    out = env.folder / "export"
    result = env.run("export", "--env", "development", "--out", str(out))
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    assert [(o["kind"], o["name"]) for o in manifest["objects"]] == [
        ("function", "with_vat"), ("procedure", "recent"), ("view", "gross"),
        ("view", "big_gross"), ("trigger", "orders_ai"), ("event", "purge_audit")]
    schema_sql = (out / "schema.sql").read_text()
    assert "DELIMITER ;;" in schema_sql and "DEFINER=CURRENT_USER TRIGGER" in schema_sql
    result = env.run("import", str(out), "--env", "production", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    assert env.run("analyze").exit_code == 0        # tables, partitions, every object
    for table in ("orders", "audit"):
        assert table_digest(env.source, env.database, table) == table_digest(
            env.target, env.database, table)
    env.dst("INSERT INTO orders VALUES (3, 1, NULL)")
    assert env.dst("SELECT msg FROM audit") == [("new 3;",)]
    assert env.dst("CALL recent(1)") == [(3,)]
    assert env.dst("SELECT g FROM big_gross") == [(Decimal("11.99"),)]
    # A second import leaves the objects it finds alone.
    again = env.run("import", str(out), "--env", "production", "--yes", "--no-backup")
    assert again.exit_code == 0, again.output
