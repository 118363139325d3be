"""DESIGN.md's CLI contract across commands: confirmation, --yes, exit codes, JSON on stdout."""

from __future__ import annotations

import json
import subprocess
import time

import pytest

from tests.support import TestEnv, dumpload_command, schema_digest


def small_drift(env: TestEnv, same_structure: bool = False) -> None:
    env.src("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20), w INT NULL)",
            "INSERT INTO a SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_100")
    extra = ", w INT NULL" if same_structure else ""
    env.dst(f"CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20){extra})",
            "INSERT INTO a (id, v) SELECT seq, 'old' FROM seq_1_to_50")


@pytest.mark.parametrize("args", [
    ("structure",), ("data",), ("sync",),
    ("backup", "restore", "latest", "--env", "production"),
    ("backup", "prune", "--env", "production"),
])
def test_writes_refuse_without_terminal_or_yes(env: TestEnv, args: tuple[str, ...]) -> None:
    small_drift(env, same_structure=args[0] == "data")
    if args[0] == "backup":  # something to restore or prune
        assert env.run("backup", "create", "--env", "production", "--yes").exit_code == 0
        env.write_config(max_backups=1, backup_retention_days=0)
        assert env.run("backup", "create", "--env", "production").exit_code == 0
    before = schema_digest(env.target, env.database)
    result = env.run(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "--yes" in result.stderr
    assert schema_digest(env.target, env.database) == before


def test_analyze_and_verify_exit_1_on_differences_and_json_is_one_document(env: TestEnv) -> None:
    small_drift(env)
    for command in ("analyze", "verify"):
        result = env.run(command, "--json")
        assert result.exit_code == 1, result.stderr
        json.loads(result.stdout)  # stdout holds exactly one JSON document
    assert env.run("sync", "--yes").exit_code == 0
    for command in ("analyze", "verify"):
        result = env.run(command, "--json")
        assert result.exit_code == 0, result.stdout + result.stderr
        json.loads(result.stdout)


def test_sync_dry_run_json_is_the_plan(env: TestEnv) -> None:
    small_drift(env)
    result = env.run("sync", "--dry-run", "--json")
    assert result.exit_code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["dry_run"] is True and plan["data"][0]["table"] == "a"
    assert any("ADD COLUMN" in s for s in plan["structure"]["statements"])


def test_unknown_environment_is_a_config_error(env: TestEnv) -> None:
    result = env.run("tables", "--env", "prodution")
    assert result.exit_code == 3 and "did you mean 'production'" in result.stderr


def test_rollback_without_runs_is_a_usage_error(env: TestEnv) -> None:
    result = env.run("rollback", "--yes")
    assert result.exit_code == 2 and "no sync run" in result.stderr


def test_a_connection_lost_mid_command_is_exit_4_with_a_hint(env: TestEnv) -> None:
    env.src("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200))",
            "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_600000")
    env.dst("CREATE TABLE big (id INT PRIMARY KEY, pad VARCHAR(200))")
    env.write_config(threads=1)
    proc = subprocess.Popen([dumpload_command(), "--config", str(env.config_path), "verify",
                             "--tables", "big"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = False
        deadline = time.monotonic() + 30
        while not killed and time.monotonic() < deadline and proc.poll() is None:
            for row in env.source.sql(None, "SELECT ID, INFO FROM information_schema.PROCESSLIST"
                                      f" WHERE DB = '{env.database}' AND INFO LIKE '%big%'"):
                env.source.sql(None, f"KILL {row[0]}")
                killed = True
            time.sleep(0.01)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert killed, "the checksum query was never seen"
    assert proc.returncode in (4, 6), out + err
    assert "Traceback" not in err and "hint:" in err

