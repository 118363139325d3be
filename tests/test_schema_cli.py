"""`analyze` and `structure` end to end: exit codes, JSON on stdout, dry run, unsafe
refusal, table selection, the pre-change backup, and strict apply."""

from __future__ import annotations

import json

from tests.support import TestEnv, table_digest


def tables_of(env: TestEnv) -> list[str]:
    return [r[0] for r in env.dst("SHOW TABLES")]


def create_of(env: TestEnv, table: str) -> str:
    return env.dst(f"SHOW CREATE TABLE `{table}`")[0][1]


def test_analyze_json_and_exit_codes(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20))")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)")
    before = create_of(env, "t")
    result = env.run_process("analyze", "--json")
    assert result.returncode == 1, result.stderr
    doc = json.loads(result.stdout)
    assert doc["identical"] is False and doc["from"] == "development"
    assert doc["statements"] == ["ALTER TABLE `t`\n  ADD COLUMN `a` varchar(20) CHARACTER SET "
                                 "utf8mb4 COLLATE utf8mb4_general_ci NULL DEFAULT NULL "
                                 "AFTER `id`"]
    assert doc["differences"][0]["name"] == "a"
    assert "column a: missing in target" in result.stderr
    assert create_of(env, "t") == before
    text = env.run("analyze")
    assert text.exit_code == 1 and "ADD COLUMN `a`" in text.stdout
    env.dst("ALTER TABLE t ADD COLUMN a VARCHAR(20)")
    same = env.run("analyze", "--json")
    assert same.exit_code == 0 and json.loads(same.stdout)["identical"] is True


def test_structure_dry_run_and_confirmation(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY, a INT)", "CREATE TABLE n (id INT)")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)")
    dry = env.run("structure", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "CREATE TABLE `n`" in dry.output and "nothing written" in dry.output
    assert tables_of(env) == ["t"]
    refused = env.run("structure")  # no terminal, no --yes
    assert refused.exit_code == 2 and tables_of(env) == ["t"]
    done = env.run("structure", "--yes")
    assert done.exit_code == 0, done.output
    assert sorted(tables_of(env)) == ["n", "t"]
    assert env.run("analyze").exit_code == 0
    again = env.run("structure", "--yes")
    assert again.exit_code == 0 and "nothing to do" in again.output


def test_backup_of_touched_tables_before_changes(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY, a INT)", "CREATE TABLE u (id INT)",
            "CREATE TABLE same (id INT)")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)", "CREATE TABLE same (id INT)",
            "INSERT INTO t VALUES (1), (2)")
    result = env.run("structure", "--yes")
    assert result.exit_code == 0, result.output
    assert "backup: " in result.output
    backups = list((env.folder / "backups").rglob("*pre-structure*.manifest.json"))
    assert len(backups) == 1
    manifest = json.loads(backups[0].read_text())
    assert "t" in json.dumps(manifest) and "same" not in json.dumps(manifest.get("tables"))
    assert table_digest(env.target, env.database, "t")[0] == 2


def test_unsafe_changes_are_refused_without_flag(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(5))")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(50), b INT)",
            "CREATE TABLE legacy (id INT)", "INSERT INTO t VALUES (1, 'abc', 7)")
    before = create_of(env, "t")
    refused = env.run("structure", "--yes", "--no-backup")
    assert refused.exit_code == 5
    for text in ("legacy", "drop column b", "narrow varchar(50)"):
        assert text in refused.output.replace("_", " "), refused.output
    assert create_of(env, "t") == before and "legacy" in tables_of(env)
    dry = env.run("structure", "--dry-run", "--allow-unsafe")
    assert dry.exit_code == 0 and "DROP TABLE `legacy`" in dry.output
    done = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
    assert done.exit_code == 0, done.output
    assert tables_of(env) == ["t"] and env.dst("SELECT id, a FROM t") == [(1, "abc")]


def test_narrowing_that_would_truncate_is_refused_or_made_explicit(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(3))")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(10))",
            "INSERT INTO t VALUES (1, 'abcdef'), (2, 'ab')")
    result = env.run("structure", "--yes", "--no-backup")
    assert result.exit_code == 5
    assert "t.a: 1 row(s) with values longer than varchar(3)" in result.output
    assert env.dst("SELECT a FROM t ORDER BY id") == [("abcdef",), ("ab",)]
    # Allowed: the truncation is a statement of the plan, shown with its row count.
    result = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
    assert result.exit_code == 0, result.output
    assert "conversion (1 rows): UPDATE `t` SET `a` = LEFT(`a`, 3)" in result.output
    assert env.dst("SELECT a FROM t ORDER BY id") == [("abc",), ("ab",)]


def test_table_selection(env: TestEnv) -> None:
    env.src("CREATE TABLE keep_a (id INT, x INT)", "CREATE TABLE skip_b (id INT, y INT)",
            "CREATE TABLE excluded (id INT, z INT)")
    env.dst("CREATE TABLE keep_a (id INT)", "CREATE TABLE skip_b (id INT)",
            "CREATE TABLE excluded (id INT)")
    env.write_config(exclude_tables=["excluded"])
    doc = json.loads(env.run("analyze", "--json").stdout)
    assert {d["table"] for d in doc["differences"]} == {"keep_a", "skip_b"}
    doc = json.loads(env.run("analyze", "--json", "--tables", "keep_*").stdout)
    assert {d["table"] for d in doc["differences"]} == {"keep_a"}
    env.write_config(structure_tables=["skip_*", "excluded"], exclude_tables=["excluded"])
    assert env.run("structure", "--yes", "--no-backup").exit_code == 0
    assert "`y`" in create_of(env, "skip_b") and "`x`" not in create_of(env, "keep_a")


def test_views_and_triggers_get_target_definer(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT)",
            "CREATE DEFINER=`nobody`@`nowhere` VIEW v AS SELECT id FROM t",
            "CREATE DEFINER=`nobody`@`nowhere` TRIGGER tr BEFORE INSERT ON t "
            "FOR EACH ROW SET NEW.id = NEW.id + 1")
    env.dst("CREATE TABLE t (id INT)")
    assert env.run("structure", "--yes", "--no-backup").exit_code == 0
    definers = env.dst("SELECT DEFINER FROM information_schema.VIEWS WHERE TABLE_SCHEMA="
                       f"'{env.database}' UNION ALL SELECT DEFINER FROM "
                       f"information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{env.database}'")
    assert [d[0].split("@")[0] for d in definers] == ["root", "root"]
    assert env.run("analyze").exit_code == 0
    assert env.run("analyze", "--keep-definer").exit_code == 1
