"""The sync run journal: resume the unfinished run, lock against a live one, find for rollback."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from dumpload import journal as journals
from dumpload.errors import UsageError


def test_a_failed_run_is_resumed_with_its_backup(tmp_path: Path) -> None:
    first = journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop")
    first.add_unique("backups", ["shop_20260101_000000_pre-sync"])
    first.add_unique("tables_copied", ["a", "b"])
    first.finish(journals.FAILED, {"step": "data"})
    again = journals.begin(tmp_path, "20260101_000100", "dev", "prod", "shop")
    assert again.run_id == "20260101_000000" and again.resumed_times == 1
    assert again.backups == ["shop_20260101_000000_pre-sync"] and again.failure is None


def test_a_finished_run_is_not_resumed(tmp_path: Path) -> None:
    journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop").finish(journals.DONE)
    fresh = journals.begin(tmp_path, "20260101_000100", "dev", "prod", "shop")
    assert fresh.run_id == "20260101_000100" and fresh.resumed_times == 0


def test_another_source_starts_a_new_run(tmp_path: Path) -> None:
    journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop").finish(journals.FAILED)
    other = journals.begin(tmp_path, "20260101_000100", "staging", "prod", "shop")
    assert other.run_id == "20260101_000100"


def test_a_live_run_locks_the_target(tmp_path: Path) -> None:
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        running = journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop")
        running.pid = sleeper.pid
        running.save()
        with pytest.raises(UsageError, match="another sync"):
            journals.begin(tmp_path, "20260101_000100", "dev", "prod", "shop")
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_killed_run_is_resumed(tmp_path: Path) -> None:
    dead = subprocess.Popen(["true"])
    dead.wait()
    killed = journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop")
    killed.pid = dead.pid
    killed.save()
    assert journals.begin(tmp_path, "x", "dev", "prod", "shop").run_id == "20260101_000000"


def test_find_defaults_to_the_newest_run_with_changes(tmp_path: Path) -> None:
    a = journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop")
    a.add_unique("tables_altered", ["t"])
    a.finish(journals.DONE)
    journals.begin(tmp_path, "20260101_000100", "dev", "prod", "shop").finish(journals.NOTHING)
    assert journals.find(tmp_path, None).run_id == "20260101_000000"
    assert journals.find(tmp_path, "20260101_000100").run_id == "20260101_000100"
    with pytest.raises(UsageError):
        journals.find(tmp_path, "nope")


def test_save_is_atomic_and_private_to_the_log_dir(tmp_path: Path) -> None:
    j = journals.begin(tmp_path, "r1", "dev", "prod", "shop")
    assert j.path == tmp_path / "runs" / "r1.json"
    assert not list((tmp_path / "runs").glob("*.tmp"))
    assert journals.load(j.path).pid == os.getpid()


def test_an_old_unfinished_run_is_abandoned_not_resumed(tmp_path: Path) -> None:
    old = journals.begin(tmp_path, "20250101_000000", "dev", "prod", "shop")
    old.add_unique("backups", ["shop_20250101_000000_pre-sync"])
    old.finish(journals.FAILED)
    doc = json.loads(old.path.read_text())
    doc["updated"] = "2025-01-01T00:00:00+00:00"
    old.path.write_text(json.dumps(doc))
    fresh = journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop")
    assert fresh.run_id == "20260101_000000" and fresh.backups == []
    assert journals.load(old.path).status == journals.ABANDONED


def test_settle_finishes_the_unfinished_run(tmp_path: Path) -> None:
    failed = journals.begin(tmp_path, "20260101_000000", "dev", "prod", "shop")
    failed.finish(journals.FAILED)
    assert journals.settle(tmp_path, "prod", "shop").run_id == "20260101_000000"
    assert journals.load(failed.path).status == journals.DONE
    assert journals.begin(tmp_path, "x2", "dev", "prod", "shop").run_id == "x2"
