"""Procedures, functions and events against real servers: created under the source's
sql_mode and character set context with the target account as definer, counted by verify,
dropped only with --allow-unsafe."""

from __future__ import annotations

import json

import pymysql

from tests.support import TestEnv

LATIN1_PROC = ("CREATE DEFINER = `dl_app_owner`@`%` PROCEDURE greet(IN who VARCHAR(20)) "
               "SQL SECURITY INVOKER SELECT CONCAT('café ', who) AS \"hello\"")


def routine_row(env: TestEnv, server: str, name: str) -> tuple:
    run = env.src if server == "source" else env.dst
    return run("SELECT DEFINER, SQL_MODE, CHARACTER_SET_CLIENT, COLLATION_CONNECTION, "
               "ROUTINE_DEFINITION, SECURITY_TYPE FROM information_schema.ROUTINES "
               f"WHERE ROUTINE_SCHEMA = DATABASE() AND ROUTINE_NAME = '{name}'")[0]


def create_in_latin1(env: TestEnv) -> None:
    """A procedure created by a latin1 client under ANSI_QUOTES, as an old app would."""
    conn = pymysql.connect(host=env.source.host, port=env.source.port, user="root",
                           password="", database=env.database, charset="latin1",
                           autocommit=True)
    try:
        with conn.cursor() as cur:
            cur.execute("SET sql_mode = 'ANSI_QUOTES,STRICT_ALL_TABLES'")
            cur.execute(LATIN1_PROC)
    finally:
        conn.close()


def test_routine_keeps_sql_mode_and_charset_context_and_gets_current_user(env: TestEnv) -> None:
    create_in_latin1(env)
    source = routine_row(env, "source", "greet")
    assert source[:3] == ("dl_app_owner@%", "ANSI_QUOTES,STRICT_ALL_TABLES", "latin1")
    result = env.run("structure", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    target = routine_row(env, "target", "greet")
    account = env.dst("SELECT CURRENT_USER()")[0][0]
    assert target[0] == account                     # DEFINER=CURRENT_USER on the target
    assert target[1:] == source[1:]                 # sql_mode, charset context, body, security
    assert "café" in target[4]
    assert env.dst("CALL greet('bob')") == env.src("CALL greet('bob')") == [("café bob",)]
    assert env.run("analyze").exit_code == 0


def test_keep_definer_keeps_the_sources_account(env: TestEnv) -> None:
    env.src("CREATE DEFINER = `dl_app_owner`@`%` FUNCTION answer() RETURNS INT "
            "DETERMINISTIC RETURN 42")
    env.dst("CREATE FUNCTION answer() RETURNS INT DETERMINISTIC RETURN 42")
    assert env.run("analyze").exit_code == 0        # only the definer differs: not compared
    assert env.run("analyze", "--keep-definer").exit_code == 1
    result = env.run("structure", "--yes", "--no-backup", "--keep-definer")
    assert result.exit_code == 0, result.output
    assert routine_row(env, "target", "answer")[0] == "dl_app_owner@%"


def test_verify_counts_routines_and_events(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)",
            "CREATE PROCEDURE p() SELECT COUNT(*) FROM t",
            "CREATE FUNCTION f() RETURNS INT RETURN 1",
            "CREATE EVENT e ON SCHEDULE EVERY 1 DAY STARTS '2031-01-01' DISABLE DO DELETE FROM t")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1)")
    missing = env.run("verify", "--json")
    assert missing.exit_code == 1
    doc = json.loads(missing.stdout)
    assert doc["ok"] is False
    assert doc["objects"]["procedures"] == {"source": 1, "target": 0}
    assert doc["objects"]["functions"] == {"source": 1, "target": 0}
    assert doc["objects"]["events"] == {"source": 1, "target": 0}
    assert any("procedure" in d and "missing in target" in d for d in doc["structure_differences"])
    human = env.run("analyze")
    assert "procedure p: missing in target" in human.output
    assert "event e: missing in target" in human.output
    assert env.run("sync", "--yes").exit_code == 0
    ok = env.run("verify", "--json")
    assert ok.exit_code == 0, ok.output
    assert all(n["source"] == n["target"] for n in json.loads(ok.stdout)["objects"].values())


def test_dropping_a_routine_is_unsafe(env: TestEnv) -> None:
    env.dst("CREATE PROCEDURE old_job() SELECT 1",
            "CREATE EVENT old_event ON SCHEDULE EVERY 1 DAY STARTS '2031-01-01' DISABLE DO "
            "SELECT 1")
    refused = env.run("sync", "--yes")
    assert refused.exit_code == 5
    assert "drop procedure old_job" in refused.output
    assert len(env.dst("SHOW PROCEDURE STATUS WHERE Db = DATABASE()")) == 1
    done = env.run("sync", "--yes", "--allow-unsafe")
    assert done.exit_code == 0, done.output
    assert env.dst("SHOW PROCEDURE STATUS WHERE Db = DATABASE()") == []
    assert env.dst("SHOW EVENTS") == []
