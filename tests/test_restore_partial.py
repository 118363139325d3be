"""A restore stopped between two foreign-key groups' swaps is recorded as failed *and*
partial, the backups taken meanwhile are labelled half-restored, `latest` passes over them,
and a completed restore ends the state. A restore killed before any swap is failed only.

The instants are made deterministic on the real server: a transaction holding a metadata
lock on the second group's table keeps the restore waiting at that swap (after the first
group's swap ended); a global read lock keeps it inside the load, before any swap.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pymysql

from dumpload.backup import create_backup
from dumpload.config import load_config
from dumpload.swap import executor_lock
from tests.support import TestEnv, dumpload_command, wait_for


def build(env: TestEnv) -> str:
    """Two independent groups, the FK pair (with a trigger) much bigger so that it swaps
    first; backed up in their "new" state, then changed to "old". Returns the backup id."""
    env.write_config(lock_wait_total=600)
    env.dst("CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20))",
            "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, v VARCHAR(60), "
            "CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
            "CREATE TABLE audit (n INT)",
            "CREATE TRIGGER trg_child AFTER INSERT ON child FOR EACH ROW "
            "INSERT INTO audit VALUES (NEW.id)",
            "CREATE TABLE solo (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_100",
            "INSERT INTO child SELECT seq, 1 + seq % 100, REPEAT('n', 50) FROM seq_1_to_40000",
            "INSERT INTO solo SELECT seq, 'new' FROM seq_1_to_50")
    config = load_config(env.config_path)
    info = create_backup(config, config.env("production"), ["parent", "child", "solo"])
    env.dst("UPDATE parent SET name = 'old'", "DELETE FROM child WHERE id > 30000",
            "UPDATE solo SET v = 'old'")
    return info.id


def state(env: TestEnv) -> dict[str, str]:
    """Which tables hold the backup's rows ("new") and which the old ones."""
    parent = env.dst("SELECT COUNT(*) FROM parent WHERE name = 'old'")[0][0]
    child = env.dst("SELECT COUNT(*) FROM child")[0][0]
    solo = env.dst("SELECT COUNT(*) FROM solo WHERE v = 'old'")[0][0]
    return {"parent": "old" if parent else "new", "child": "new" if child == 40000 else "old",
            "solo": "old" if solo else "new"}


def objects_present(env: TestEnv) -> None:
    fks = env.dst("SELECT CONSTRAINT_NAME, TABLE_NAME FROM information_schema."
                  f"REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = '{env.database}'")
    assert fks == [("fk_child_parent", "child")], fks
    triggers = env.dst("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema."
                       f"TRIGGERS WHERE TRIGGER_SCHEMA = '{env.database}'")
    assert triggers == [("trg_child", "child")], triggers


def cli(env: TestEnv, *args: str) -> list[str]:
    return [dumpload_command(), "--config", str(env.config_path), *args]


def marker(env: TestEnv) -> dict[str, Any]:
    for path in (env.folder / "logs" / "inprogress").glob("restore_*.json"):
        try:
            return dict(json.loads(path.read_text()))
        except ValueError:
            pass  # being replaced right now
    return {}


def history(env: TestEnv) -> list[dict[str, Any]]:
    path = env.folder / "logs" / "backup_history.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def listed(env: TestEnv) -> dict[str, dict[str, Any]]:
    done = subprocess.run(cli(env, "backup", "list", "--env", "production", "--json"),
                          capture_output=True, text=True, check=True)
    return {b["id"]: b for b in json.loads(done.stdout)}


@contextmanager
def holder(env: TestEnv, *statements: str) -> Iterator[pymysql.Connection]:
    """Another connection running `statements` and keeping what they lock until the end."""
    conn = env.target.connect(env.database)  # START TRANSACTION keeps locks
    try:
        with conn.cursor() as cur:
            for stmt in statements:
                cur.execute(stmt)
                cur.fetchall()
        yield conn
    finally:
        conn.close()


def kill_and_wait_for_executor(env: TestEnv, proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the restore, then wait until no swap executor is left on the target (one
    waiting for a lock gives up when dumpload dies)."""
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    name = executor_lock(env.database)
    wait_for(lambda: env.dst(f"SELECT IS_USED_LOCK('{name}')")[0][0] is None, timeout=60)


def test_restore_killed_between_groups_is_partial_and_labels_backups(env: TestEnv) -> None:
    backup_id = build(env)
    assert state(env) == {"parent": "old", "child": "old", "solo": "old"}
    restore = cli(env, "backup", "restore", backup_id, "--env", "production", "--yes",
                  "--no-backup")
    with holder(env, "START TRANSACTION", "SELECT * FROM solo LIMIT 1"):
        proc = subprocess.Popen(restore, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # the first group's swap has ended, the second one's has started and waits for us
        wait_for(lambda: marker(env).get("progress", {}).get("swapping") == ["solo"],
                 timeout=120)
        progress = marker(env)["progress"]
        assert sorted(progress["swapped"]) == ["child", "parent"]
        kill_and_wait_for_executor(env, proc)
    assert state(env) == {"parent": "new", "child": "new", "solo": "old"}
    objects_present(env)

    # the next command settles the marker: failed, partial, a warning naming the tables
    shown = subprocess.run(cli(env, "backup", "list", "--env", "production", "--json"),
                           capture_output=True, text=True, check=True)
    # `backup list` reads no server: the swap that was waiting is "possibly restored"
    assert "HALF-RESTORED" in shown.stderr, shown.stderr
    assert "restored: child, parent" in shown.stderr, shown.stderr
    assert "possibly restored (its swap had started): solo" in shown.stderr, shown.stderr
    [failed] = [h for h in history(env) if h.get("event") == "restore"]
    assert failed["status"] == "failed" and "interrupted" in failed["error"]
    assert failed["partial"] == {"restored": ["child", "parent"], "uncertain": ["solo"],
                                 "not_restored": []}
    interrupted = failed["run_id"]
    assert interrupted

    # a restore again: before settling leftovers it reads that solo's work table is still
    # there (not swapped); its pre-restore backup is labelled; it completes, ending the state
    rerun = subprocess.run(restore[:-1], capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert "did not happen (solo not restored)" in rerun.stderr, rerun.stderr
    [resolved] = [h for h in history(env) if h.get("event") == "half-restored"]
    assert resolved["restored"] == ["child", "parent"] and resolved["not_restored"] == ["solo"]
    assert state(env) == {"parent": "new", "child": "new", "solo": "new"}
    objects_present(env)
    backups = listed(env)
    [pre] = [b for b in backups.values() if b["kind"] == "pre-restore"]
    assert pre["half_restored"]["restore"] == interrupted
    assert pre["half_restored"]["backup"] == backup_id
    assert pre["half_restored"]["tables"] == ["child", "parent"]
    assert pre["half_restored"]["not_restored"] == ["solo"]
    assert backups[backup_id]["half_restored"] is None
    text = subprocess.run(cli(env, "backup", "list", "--env", "production"),
                          capture_output=True, text=True, check=True).stdout
    assert "half-restored" in text and pre["id"] in text

    # `latest` passes over the labelled backup (the newest) and says so ...
    dry = cli(env, "backup", "restore", "latest", "--env", "production", "--dry-run")
    latest = subprocess.run(dry, capture_output=True, text=True)
    assert latest.returncode == 0, latest.stderr
    assert f"passing over {pre['id']}: labelled half-restored" in latest.stderr
    assert f"backup {backup_id} " in latest.stdout + latest.stderr
    # ... and refuses when every good backup is labelled
    manifest = env.folder / "backups" / "production" / f"{backup_id}.manifest.json"
    aside = manifest.with_name("aside.json.off")
    manifest.rename(aside)
    refused = subprocess.run(dry, capture_output=True, text=True)
    aside.rename(manifest)
    assert refused.returncode == 7 and "labelled half-restored" in refused.stderr

    # the completed rerun ended the state: a backup taken now carries no label
    after = subprocess.run(cli(env, "backup", "create", "--env", "production", "--json"),
                           capture_output=True, text=True, check=True)
    assert json.loads(after.stdout)["half_restored"] is None


def test_restore_killed_before_any_swap_is_failed_not_partial(env: TestEnv) -> None:
    backup_id = build(env)
    restore = cli(env, "backup", "restore", backup_id, "--env", "production", "--yes",
                  "--no-backup")
    with holder(env, "FLUSH TABLES WITH READ LOCK"):
        proc = subprocess.Popen(restore, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(lambda: marker(env).get("phase") == "load into work tables", timeout=120)
        wait_for(lambda: env.dst("SELECT COUNT(*) FROM information_schema.PROCESSLIST "
                                 "WHERE STATE IN ('Waiting for backup lock', "
                                 "'Waiting for global read lock')")[0][0] > 0)
        kill_and_wait_for_executor(env, proc)
    assert state(env) == {"parent": "old", "child": "old", "solo": "old"}
    shown = subprocess.run(cli(env, "backup", "list", "--json"), capture_output=True,
                           text=True, check=True)
    assert "HALF-RESTORED" not in shown.stderr
    [failed] = [h for h in history(env) if h.get("event") == "restore"]
    assert failed["status"] == "failed" and "partial" not in failed
    assert failed["swapped"] == []
    assert not (env.folder / "logs" / "half_restored").exists() or not any(
        (env.folder / "logs" / "half_restored").iterdir())
    # a backup now is not labelled, and a rerun completes
    done = subprocess.run(cli(env, "backup", "create", "--env", "production", "--json"),
                          capture_output=True, text=True, check=True)
    assert json.loads(done.stdout)["half_restored"] is None
    rerun = subprocess.run(restore, capture_output=True, text=True)
    assert rerun.returncode == 0, rerun.stderr
    assert state(env) == {"parent": "new", "child": "new", "solo": "new"}
    objects_present(env)


def test_restore_failing_between_groups_is_recorded_partial(env: TestEnv) -> None:
    """Not a kill: the second group's swap gives up on its metadata lock (exit 6). The
    failure is recorded partial at once, and the hint says how to complete or undo it."""
    backup_id = build(env)
    env.write_config(lock_wait_total=2, lock_wait_timeout=1)
    with holder(env, "START TRANSACTION", "SELECT * FROM solo LIMIT 1"):
        failed = subprocess.run(cli(env, "backup", "restore", backup_id, "--env", "production",
                                    "--yes"), capture_output=True, text=True)
    assert failed.returncode == 6, failed.stderr
    assert "HALF-RESTORED" in failed.stderr and "not restored: solo" in failed.stderr
    [record] = [h for h in history(env) if h.get("event") == "restore"]
    assert record["status"] == "failed"
    assert record["partial"] == {"restored": ["child", "parent"], "uncertain": [],
                                 "not_restored": ["solo"]}
    assert state(env) == {"parent": "new", "child": "new", "solo": "old"}
    [pre] = [b for b in listed(env).values() if b["kind"] == "pre-restore"]
    assert pre["half_restored"] is None  # taken before the restore began
    again = subprocess.run(cli(env, "backup", "create", "--env", "production", "--json"),
                           capture_output=True, text=True, check=True)
    assert json.loads(again.stdout)["half_restored"]["tables"] == ["child", "parent"]
    # restoring the not-restored group from the same backup completes the restore
    done = subprocess.run(cli(env, "backup", "restore", backup_id, "--env", "production",
                              "--yes", "--no-backup", "--tables", "solo"),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert state(env) == {"parent": "new", "child": "new", "solo": "new"}
    last = subprocess.run(cli(env, "backup", "create", "--env", "production", "--json"),
                          capture_output=True, text=True, check=True)
    assert json.loads(last.stdout)["half_restored"] is None
