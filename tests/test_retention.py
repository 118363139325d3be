"""Retention against real backups: kinds, and what prune must never delete."""

from __future__ import annotations

import json
import os
import time

from dumpload.backup import list_backups
from dumpload.config import load_config
from tests.support import TestEnv


def _sync(env: TestEnv, value: str) -> str:
    env.src(f"UPDATE items SET v = '{value}'")
    result = env.run("sync", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["run_id"]


def test_prune_keeps_the_full_backup_and_the_last_runs_rollback_point(env: TestEnv) -> None:
    for side in (env.src, env.dst):
        side("CREATE TABLE items (id INT PRIMARY KEY, v VARCHAR(20))",
             "INSERT INTO items SELECT seq, 'start' FROM seq_1_to_200")
    full = env.run("backup", "create", "--env", "production", "--json")
    assert full.exit_code == 0, full.stderr
    full_id = json.loads(full.stdout)["id"]
    assert json.loads(full.stdout)["kind"] == "full"
    time.sleep(1.1)  # the runs are newer than the full backup, to the second
    runs = [_sync(env, f"run{n}") for n in range(5)]
    env.write_config(max_backups=2)
    listed = json.loads(env.run("backup", "list", "--env", "production", "--json").stdout)
    by_run = {b["protects_run"]: b for b in listed if b["kind"] == "pre-change"}
    assert set(by_run) == set(runs)
    assert env.run("backup", "prune", "--env", "production", "--yes").exit_code == 0
    left = {b.id: b for b in list_backups(load_config(env.config_path), "production")}
    assert full_id in left and by_run[runs[-1]]["id"] in left
    # Every run is newer than the only full backup: each rollback point is the only way
    # back to the state before its run, so none of them went.
    assert {b.protects for b in left.values() if b.kind == "pre-change"} == set(runs)
    # The last run rolls back from its (kept) backup.
    rolled = env.run("rollback", "--yes", "--json")
    assert rolled.exit_code == 0, rolled.stderr
    assert env.dst("SELECT DISTINCT v FROM items") == [("run3",)]

    # A newer full backup: older runs' rollback points now follow max_backups (2 per kind)
    # except the most recent run's (the rollback just made: its pre-restore backup).
    time.sleep(1.1)
    assert env.run("backup", "create", "--env", "production", "--yes").exit_code == 0
    dry = env.run("backup", "prune", "--env", "production", "--dry-run", "--json")
    doc = json.loads(dry.stdout)
    kept = {b.id: b for b in list_backups(load_config(env.config_path), "production")
            if b.id in doc["kept"]}
    assert full_id in kept  # two full backups, max 2
    assert sorted(b.protects for b in kept.values() if b.kind == "pre-change") == runs[-2:]
    assert [b.kind for b in kept.values()].count("pre-restore") == 1
    assert all(doc["reasons"][i] for i in doc["kept"] + doc["deleted"])
    text = env.run_process("backup", "list", "--env", "production",
                           env={**os.environ, "COLUMNS": "250"})
    assert "pre-change" in text.stdout and runs[-1] in text.stdout, text.stdout
