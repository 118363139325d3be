"""Everything dumpload writes is 0600 in folders it creates 0700, whatever the umask."""

from __future__ import annotations

import json
import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dumpload.private import make_dirs, open_private, touch, write_text
from tests.support import TestEnv


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask of a shell, under which plain `open()` makes 0644 files."""
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_dirs_creates_0700_and_leaves_existing_folders_alone(tmp_path: Path,
                                                                   umask_022: None) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    os.chmod(shared, 0o755)
    made = make_dirs(shared / "a" / "b")
    assert mode(shared) == 0o755
    assert mode(shared / "a") == 0o700 and mode(made) == 0o700
    assert make_dirs(made) == made  # existing: no error, no change
    with pytest.raises(NotADirectoryError):
        touch(tmp_path / "file")
        make_dirs(tmp_path / "file")


def test_open_private_creates_0600_and_narrows_our_logs(tmp_path: Path, umask_022: None) -> None:
    write_text(tmp_path / "new.json", "{}")
    assert mode(tmp_path / "new.json") == 0o600
    with open_private(tmp_path / "data.bin", "wb") as fh:
        fh.write(b"\0")
    assert mode(tmp_path / "data.bin") == 0o600
    old_log = tmp_path / "history.log"
    old_log.write_text("from an older version\n")
    os.chmod(old_log, 0o644)
    with open_private(old_log, "a") as fh:
        fh.write("new line\n")
    assert mode(old_log) == 0o600 and old_log.read_text().count("\n") == 2


def build(env: TestEnv) -> None:
    for run in (env.src, env.dst):
        run("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))",
            "CREATE TABLE b (id INT PRIMARY KEY, a_id INT, FOREIGN KEY (a_id) REFERENCES a (id))")
    env.src("INSERT INTO a SELECT seq, CONCAT('v', seq) FROM seq_1_to_3000",
            "INSERT INTO b SELECT seq, seq FROM seq_1_to_3000",
            "CREATE TABLE only_src (id INT PRIMARY KEY)", "INSERT INTO only_src VALUES (1)")
    env.dst("INSERT INTO a VALUES (1, 'old')")


def find_open(*folders: Path) -> str:
    """`find FOLDERS -perm /077 -type f`, the check a user would run."""
    out = subprocess.run(["find", *map(str, folders), "-perm", "/077", "-type", "f"],
                         capture_output=True, text=True, check=True)
    return out.stdout


def test_sync_export_and_rollback_write_private_files(env: TestEnv, umask_022: None) -> None:
    """In-process (the library's own modes; the CLI's umask 077 is not in play here)."""
    build(env)
    sync = env.run("sync", "--yes", "--json")
    assert sync.exit_code == 0, sync.output
    out = env.folder / "export"
    exported = env.run("export", "--env", "development", "--out", str(out))
    assert exported.exit_code == 0, exported.output
    rollback = env.run("rollback", json.loads(sync.stdout)["run_id"], "--yes")
    assert rollback.exit_code == 0, rollback.output
    backup_dir, log_dir = env.folder / "backups", env.folder / "logs"
    assert find_open(backup_dir, log_dir, out) == ""
    files = [p for d in (backup_dir, log_dir, out) for p in d.rglob("*") if p.is_file()]
    assert len(files) > 8 and {p.suffix for p in files} >= {".zst", ".json", ".log", ".sql"}
    folders = [d for d in (backup_dir, log_dir, out) for d in [d, *d.rglob("*")] if d.is_dir()]
    assert folders and all(mode(d) == 0o700 for d in folders), {str(d): oct(mode(d))
                                                                 for d in folders}


def test_the_installed_command_writes_private_files(env: TestEnv, umask_022: None) -> None:
    build(env)
    result = env.run_process("backup", "create", "--env", "production")
    assert result.returncode == 0, result.stderr
    assert find_open(env.folder / "backups", env.folder / "logs") == ""
    assert mode(env.folder / "backups" / "production") == 0o700


def test_doctor_warns_about_an_open_backup_folder(env: TestEnv, umask_022: None) -> None:
    backup_dir = env.folder / "backups"
    backup_dir.mkdir(mode=0o755)
    os.chmod(backup_dir, 0o755)
    result = env.run("doctor", "--json")
    assert result.exit_code == 0, result.output
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    warned = checks["backup dir access"]
    assert warned["ok"] and warned["warn"] and warned["hint"] == f"chmod 700 {backup_dir}"
    assert not checks["log dir access"]["warn"]
    human = env.run("doctor")
    assert human.exit_code == 0 and "1 warning(s)" in human.output
    assert env.run("backup", "create", "--env", "production").exit_code == 0
    assert mode(backup_dir) == 0o755  # the user's folder is never chmod-ed
    assert mode(backup_dir / "production") == 0o700
    assert find_open(backup_dir) == ""
