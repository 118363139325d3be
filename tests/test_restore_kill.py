"""Restore is a swap: a kill, a stopped server or an error at any moment leaves the old tables.

The kill matrix: restore a backup over changed tables in a subprocess, SIGKILL it at
instants spread evenly over a full restore's duration, then check that every table holds
all its old rows or all its new ones, with its foreign key and trigger present, and that
a rerun completes. Run in pytest the way the kill-matrix tool does it.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import pymysql
import pytest

from dumpload.backup import create_backup, frames
from dumpload.config import load_config
from tests.support import ROOT, TestEnv, dumpload_command, wait_for

BIG_ROWS = 600_000
POINTS = 7


def build(env: TestEnv) -> str:
    """Target tables in their backed-up ("new") state; returns the backup id. Then the
    live tables are changed to the "old" state the restore replaces."""
    env.dst("CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(80), n INT, KEY (n), KEY (v))",
            f"INSERT INTO big SELECT seq, CONCAT('row ', seq, REPEAT('x', 40)), seq % 1000 "
            f"FROM seq_1_to_{BIG_ROWS}",
            "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20))",
            "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, v VARCHAR(20), "
            "CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
            "CREATE TABLE audit (n INT)",
            "CREATE TRIGGER trg_child AFTER INSERT ON child FOR EACH ROW "
            "INSERT INTO audit VALUES (NEW.id)",
            "INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_100",
            "INSERT INTO child SELECT seq, 1 + seq % 100, 'new' FROM seq_1_to_5000")
    config = load_config(env.config_path)
    frames.DATA_FRAME_BYTES = 4 << 20  # several row frames: the big table loads in parallel
    try:
        info = create_backup(config, config.env("production"), ["big", "parent", "child"])
    finally:
        frames.DATA_FRAME_BYTES = 32 << 20
    return info.id


def make_old(env: TestEnv) -> None:
    env.dst("DELETE FROM big WHERE id % 10 = 0", "DELETE FROM child WHERE id > 4000",
            "UPDATE child SET v = 'old'", "UPDATE parent SET name = 'old'")


def digest(env: TestEnv) -> dict[str, tuple]:
    return {t: env.dst(f"SELECT COUNT(*), COALESCE(SUM(CRC32(CONCAT_WS('|', {cols}))), 0) "
                       f"FROM {t}")[0]
            for t, cols in (("big", "id, v, n"), ("parent", "id, name"),
                            ("child", "id, parent_id, v"))}


def objects_present(env: TestEnv) -> None:
    db = env.database
    fks = env.dst("SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME FROM "
                  f"information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA='{db}'")
    assert fks == [("fk_child_parent", "child", "parent")], fks
    triggers = env.dst("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                       f"WHERE TRIGGER_SCHEMA='{db}'")
    assert triggers == [("trg_child", "child")], triggers
    indexes = env.dst("SELECT COUNT(DISTINCT INDEX_NAME) FROM information_schema.STATISTICS "
                      f"WHERE TABLE_SCHEMA='{db}' AND TABLE_NAME='big'")[0][0]
    assert indexes == 3


def work_tables(env: TestEnv) -> list[str]:
    return [r[0] for r in env.dst("SELECT TABLE_NAME FROM information_schema.TABLES WHERE "
                                  f"TABLE_SCHEMA='{env.database}' AND TABLE_NAME LIKE '\\_dl%'")]


def restore_argv(env: TestEnv, backup_id: str) -> list[str]:
    return [dumpload_command(), "--config", str(env.config_path), "backup", "restore",
            backup_id, "--env", "production", "--yes", "--no-backup"]


def each_table_all_old_or_all_new(now: dict, old: dict, new: dict) -> None:
    for table, value in now.items():
        assert value in (old[table], new[table]), (table, value, old[table], new[table])


def test_sigkill_at_many_points_of_a_restore_leaves_old_or_new(env: TestEnv) -> None:
    backup_id = build(env)
    new = digest(env)
    make_old(env)
    old = digest(env)
    assert old != new
    argv = restore_argv(env, backup_id)
    t0 = time.monotonic()
    subprocess.run(argv, check=True, capture_output=True)
    full = time.monotonic() - t0
    assert digest(env) == new
    outcomes = []
    marked = 0  # kills that met a restore in progress (not one still starting up)
    for k in range(POINTS):
        make_old(env)
        at = 0.2 + k * full / (POINTS - 1)
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(at)
        killed = proc.poll() is None
        if killed:
            proc.send_signal(signal.SIGKILL)
            marked += bool(list((env.folder / "logs" / "inprogress").glob("*.json")))
        proc.wait()
        now = digest(env)
        each_table_all_old_or_all_new(now, old, new)
        objects_present(env)
        outcomes.append((round(at, 2), killed, now == old))
        rerun = subprocess.run(argv, capture_output=True, text=True)
        assert rerun.returncode == 0, rerun.stderr
        assert digest(env) == new and work_tables(env) == []
        objects_present(env)
    # The matrix hit the load (all old after the kill) and the finished restore.
    assert any(killed and was_old for _, killed, was_old in outcomes), outcomes
    listed = subprocess.run([dumpload_command(), "--config", str(env.config_path), "backup",
                             "list", "--json"], capture_output=True, text=True, check=True)
    assert json.loads(listed.stdout) is not None
    history = [json.loads(x) for x in
               (env.folder / "logs" / "backup_history.log").read_text().splitlines()]
    restores = [h for h in history if h.get("event") == "restore"]
    assert marked and sum(h["status"] == "failed" for h in restores) == marked
    assert all("interrupted" in h["error"] for h in restores if h["status"] == "failed")


def sandbox(*args: str) -> None:
    folder = os.environ.get("DUMPLOAD_TEST_SANDBOX", "/tmp/dumpload-test-sandbox")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sandbox"), *args, "--dir", folder],
                   check=True, capture_output=True)


@pytest.mark.skipif(bool(os.environ.get("DUMPLOAD_TEST_SOURCE_PORT")),
                    reason="needs the sandbox to stop and restart the target")
def test_target_stopped_mid_restore_keeps_the_old_tables(env: TestEnv) -> None:
    backup_id = build(env)
    new = digest(env)
    make_old(env)
    old = digest(env)
    proc = subprocess.Popen(restore_argv(env, backup_id), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: bool(work_tables(env)))
        time.sleep(0.5)  # rows are loading into the work tables
        sandbox("stop-server", "target")
        output = proc.communicate(timeout=120)[0]
    finally:
        sandbox("restart-server", "target")
    assert proc.returncode in (4, 7), output
    assert digest(env) == old
    objects_present(env)
    rerun = subprocess.run(restore_argv(env, backup_id), capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert digest(env) == new and work_tables(env) == []
    objects_present(env)


def test_failed_load_leaves_the_live_tables(env: TestEnv,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    backup_id = build(env)
    make_old(env)
    old = digest(env)
    from dumpload.backup import restore as restore_mod
    calls: list[int] = []
    real: Callable = restore_mod._send_job

    def flaky(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        calls.append(1)
        if len(calls) == 2:  # retried
            raise pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock")
        if len(calls) == 4:  # not retried: the restore fails, nothing swapped
            raise pymysql.err.ProgrammingError(1146, "Table 'x._dl_shadow_t' doesn't exist")
        return real(*args, **kwargs)

    monkeypatch.setattr(restore_mod, "_send_job", flaky)
    result = env.run("backup", "restore", backup_id, "--env", "production", "--yes",
                     "--no-backup")
    assert result.exit_code == 7 and "unchanged" in result.stderr
    assert "1146" in result.stderr and len(calls) >= 4
    assert digest(env) == old
    objects_present(env)
    monkeypatch.setattr(restore_mod, "_send_job", real)
    calls.clear()
    again = env.run("backup", "restore", backup_id, "--env", "production", "--yes",
                    "--no-backup")
    assert again.exit_code == 0, again.stderr
    assert work_tables(env) == []


def test_sigkill_at_many_points_of_a_rollback_leaves_old_or_new(env: TestEnv) -> None:
    """A sync replaces the big table's rows and the FK pair; its rollback is killed at
    spread instants: each table all-old (the run's result) or all-new (the backup), FK and
    trigger present; a rerun of the rollback completes."""
    schema = [
        "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(80), n INT, KEY (n), KEY (v))",
        "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20))",
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, v VARCHAR(20), "
        "CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
        "CREATE TABLE audit (n INT)",
        "CREATE TRIGGER trg_child AFTER INSERT ON child FOR EACH ROW "
        "INSERT INTO audit VALUES (NEW.id)"]
    rows = [f"INSERT INTO big SELECT seq, CONCAT('row ', seq, REPEAT('x', 40)), seq % 1000 "
            f"FROM seq_1_to_{BIG_ROWS // 2}",
            "INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_100",
            "INSERT INTO child SELECT seq, 1 + seq % 100, 'new' FROM seq_1_to_5000"]
    env.dst(*schema, *rows)
    env.src(*schema, *rows, "UPDATE big SET v = CONCAT(v, '!') WHERE id % 3 = 0",
            "DELETE FROM child WHERE id > 4000", "UPDATE parent SET name = 'synced'")
    env.write_config(data_tables=["big", "parent", "child"])
    before = digest(env)
    cli = [dumpload_command(), "--config", str(env.config_path)]

    def sync() -> str:
        done = subprocess.run([*cli, "sync", "--yes", "--json"], capture_output=True,
                              text=True)
        assert done.returncode == 0, done.stdout + done.stderr
        return str(json.loads(done.stdout)["run_id"])

    run_id = sync()
    synced = digest(env)
    assert synced != before
    t0 = time.monotonic()
    subprocess.run([*cli, "rollback", run_id, "--yes"], check=True, capture_output=True)
    full = time.monotonic() - t0
    assert digest(env) == before
    points = 6
    for k in range(points):
        run_id = sync()
        assert digest(env) == synced
        rollback = [*cli, "rollback", run_id, "--yes"]
        proc = subprocess.Popen(rollback, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3 + k * full / (points - 1))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait()
        each_table_all_old_or_all_new(digest(env), synced, before)
        objects_present(env)
        rerun = subprocess.run(rollback, capture_output=True, text=True)
        if "already rolled back" not in rerun.stderr:
            assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert digest(env) == before and work_tables(env) == []
        objects_present(env)
