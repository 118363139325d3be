"""Failures during a copy: SIGKILL, a killed target connection, readers; verify's eye."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

from tests.support import TestEnv, dumpload_command, table_digest, wait_for

ROWS = 300_000


def _make_big(env: TestEnv, rows: int = ROWS) -> None:
    ddl = ("CREATE TABLE big (id INT PRIMARY KEY, a VARCHAR(64), b TEXT, KEY ix_a (a))")
    env.src(ddl)
    env.dst(ddl)
    env.src(f"INSERT INTO big SELECT seq, MD5(seq), REPEAT(MD5(seq), 6) FROM seq_1_to_{rows}",
            "ANALYZE TABLE big")
    env.dst("INSERT INTO big SELECT seq, 'old', 'old' FROM seq_1_to_1000")


def _work_tables(env: TestEnv) -> list[tuple]:
    return env.dst(f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                   f"'{env.database}' AND TABLE_NAME LIKE '\\_dl\\_%'")


def _loading(env: TestEnv) -> list[tuple]:
    return env.target.sql(None, "SELECT ID FROM information_schema.PROCESSLIST WHERE "
                          f"DB = '{env.database}' AND INFO LIKE 'LOAD DATA%'")


def test_kill_9_mid_copy_keeps_old_rows_and_next_run_completes(env: TestEnv) -> None:
    _make_big(env)
    proc = subprocess.Popen([dumpload_command(), "--config", str(env.config_path), "data",
                             "--yes", "--no-backup"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: bool(_loading(env)))
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert env.dst("SELECT COUNT(*), MIN(a), MAX(a) FROM big") == [(1000, "old", "old")]
    result = env.run("data", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    assert _work_tables(env) == []
    assert table_digest(env.source, env.database, "big") == table_digest(
        env.target, env.database, "big")


def test_killed_load_connection_is_retried(env: TestEnv) -> None:
    _make_big(env)
    killed: list[int] = []

    def killer() -> None:
        wait_for(lambda: bool(_loading(env)))
        for (conn_id,) in _loading(env)[:1]:
            env.target.sql(None, f"KILL {conn_id}")
            killed.append(conn_id)

    thread = threading.Thread(target=killer)
    thread.start()
    result = env.run("data", "--yes", "--no-backup", "--json")
    thread.join()
    assert killed
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout[result.stdout.index("{"):])
    assert sum(t["retries"] for t in report["tables"]) >= 1
    assert table_digest(env.source, env.database, "big") == table_digest(
        env.target, env.database, "big")
    assert _work_tables(env) == []


def test_readers_always_see_a_full_table(env: TestEnv) -> None:
    _make_big(env, 150_000)
    seen: set[int] = set()
    stop = threading.Event()

    def reader() -> None:
        conn = env.target.connect(env.database)
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    try:
                        cur.execute("SELECT COUNT(*) FROM big")
                        seen.add(cur.fetchone()[0])
                    except Exception:  # the table is briefly locked by the rename: fine
                        pass
        finally:
            conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        result = env.run("data", "--yes", "--no-backup")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    assert seen <= {1000, 150_000}
    assert 1000 in seen


def test_verify_catches_changed_duplicated_and_null_to_empty(env: TestEnv) -> None:
    ddl = ("CREATE TABLE k (id INT PRIMARY KEY, v VARCHAR(10))",
           "CREATE TABLE nk (v VARCHAR(10), n INT)")
    for sql in ddl:
        env.src(sql)
        env.dst(sql)
    rows = ("INSERT INTO k SELECT seq, IF(seq % 3 = 0, NULL, CONCAT('v', seq)) "
            "FROM seq_1_to_50000", "INSERT INTO nk VALUES ('a', 1), ('b', 2), ('b', 2)")
    env.src(*rows)
    env.dst(*rows)
    ok = env.run("verify")
    assert ok.exit_code == 0, ok.output
    env.dst("UPDATE k SET v = 'changed' WHERE id = 40000")
    changed = env.run("verify", "--json")
    assert changed.exit_code == 1
    doc = json.loads(changed.stdout)
    bad = {t["table"]: t for t in doc["tables"] if not t["ok"]}
    assert set(bad) == {"k"} and bad["k"]["source_rows"] == bad["k"]["target_rows"]
    assert bad["k"]["mismatched_ranges"]
    env.dst("UPDATE k SET v = 'v40000' WHERE id = 40000", "UPDATE k SET v = '' WHERE id = 3")
    assert env.run("verify").exit_code == 1          # NULL → ''
    env.dst("UPDATE k SET v = NULL WHERE id = 3")
    assert env.run("verify").exit_code == 0
    env.dst("DELETE FROM nk WHERE v = 'b' LIMIT 1", "INSERT INTO nk VALUES ('a', 1)")
    dup = env.run("verify", "--json", "--tables", "nk")
    assert dup.exit_code == 1                        # same count, another row duplicated
    env.dst("DELETE FROM nk WHERE v = 'a' LIMIT 1", "INSERT INTO nk VALUES ('b', 2)")
    assert env.run("verify", "--tables", "nk").exit_code == 0
