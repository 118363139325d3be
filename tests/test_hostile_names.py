"""Names that look like options never steer the native tools.

A database whose name starts with `-`, tables named `--result-file=PATH`, `-e` and
`--defaults-file=PATH`, a view named `--tab=DIR` and a trigger named like an option go
through every entry point that runs `mariadb-dump` or `mariadb`: backup create, the
pre-change backup of sync, backup restore, rollback, data (source reader + loaders) and
export/import. Each test checks the rows by an independent digest and that nothing
appeared at any path a name spells.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dumpload.config import load_config
from tests.support import Servers, TestEnv, schema_digest


def q(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class Hostile:
    """The hostile names of one test and the paths they spell (short: names are ≤ 64)."""

    def __init__(self) -> None:
        stem = f"/tmp/dlh-{uuid.uuid4().hex[:10]}"
        self.paths = [Path(stem + ".sql"), Path(stem + ".cnf"), Path(stem), Path(stem + ".trg")]
        self.tables = [f"--result-file={stem}.sql", "-e", f"--defaults-file={stem}.cnf"]
        self.view = f"--tab={stem}"
        self.trigger = f"--result-file={stem}.trg"

    def spelled(self) -> list[Path]:
        return [p for p in self.paths if p.exists() or p.is_symlink()]


@pytest.fixture(params=["-dl_", "dl_"], ids=["dash-database", "plain-database"])
def hostile_env(servers: Servers, tmp_path: Path,
                request: pytest.FixtureRequest) -> Iterator[tuple[TestEnv, Hostile]]:
    """A database named `-dl_<hex>` (or `dl_<hex>`: then the table names alone are the
    hostile part) on both servers, and the names of this test."""
    database = f"{request.param}{uuid.uuid4().hex[:8]}"
    for server in (servers.source, servers.target):
        server.sql(None, f"CREATE DATABASE {q(database)}")
    env = TestEnv(servers, database, tmp_path, tmp_path / "config.json")
    env.write_config()
    names = Hostile()
    yield env, names
    for server in (servers.source, servers.target):
        with contextlib.suppress(Exception):
            server.sql(None, f"DROP DATABASE IF EXISTS {q(database)}")
    for path in names.paths:  # never left for the next run, whatever happened
        with contextlib.suppress(OSError):
            path.unlink() if not path.is_dir() else path.rmdir()


def create_tables(run, names: Hostile, rows: int, tag: str) -> None:
    """The hostile tables (with rows tagged `tag`), a view and a trigger, via `run(*sql)`."""
    statements = []
    for i, table in enumerate(names.tables):
        statements += [
            f"CREATE TABLE {q(table)} (id INT PRIMARY KEY, v VARCHAR(60), k INT, KEY (k))",
            f"INSERT INTO {q(table)} SELECT seq, CONCAT('{tag}-', seq, '-{i}'), seq % 7 "
            f"FROM seq_1_to_{rows}",
        ]
    statements += [
        f"CREATE VIEW {q(names.view)} AS SELECT id, v FROM {q('-e')}",
        f"CREATE TRIGGER {q(names.trigger)} BEFORE UPDATE ON {q(names.tables[0])} "
        "FOR EACH ROW SET NEW.k = NEW.k",
    ]
    run(*statements)


def digests(env: TestEnv, side: str) -> dict:
    server = env.source if side == "source" else env.target
    return schema_digest(server, env.database)


def assert_clean(names: Hostile) -> None:
    assert names.spelled() == [], "a name was read as an option and wrote a file"


def backups(env: TestEnv, env_name: str) -> list[dict]:
    result = env.run("backup", "list", "--env", env_name, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_backup_create_with_hostile_names(hostile_env: tuple[TestEnv, Hostile]) -> None:
    env, names = hostile_env
    create_tables(env.src, names, 300, "src")
    result = env.run("backup", "create", "--env", "development", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    manifest = json.loads(Path(doc["path"]).with_name(doc["id"] + ".manifest.json").read_text())
    assert set(names.tables) <= set(manifest["tables"]) and names.view in manifest["views"]
    assert all(manifest["rows"][t] == 300 for t in names.tables)
    # Restore by hand, as the README says, into the empty target database: same rows.
    target = env.target
    load = subprocess.run(
        f"zstd -dc {doc['path']!r} | mariadb --no-defaults -h {target.host} -P {target.port} "
        f"-u root --protocol=TCP --database={env.database!r}", shell=True, capture_output=True)
    assert load.returncode == 0, load.stderr
    assert digests(env, "target") == digests(env, "source")
    assert_clean(names)


def test_sync_pre_change_backup_and_copy_with_hostile_names(
        hostile_env: tuple[TestEnv, Hostile]) -> None:
    env, names = hostile_env
    create_tables(env.src, names, 2_000, "src")
    create_tables(env.dst, names, 500, "old")
    before = digests(env, "target")
    result = env.run("sync", "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert digests(env, "target") == digests(env, "source")
    pre = [b for b in backups(env, "production") if b["label"] == "pre-sync"]
    assert len(pre) == 1
    info = pre[0]
    assert set(names.tables) <= set(info["tables"])
    # The pre-change backup holds the old rows: restoring it gives them back.
    restore = env.run("backup", "restore", "--env", "production", "--yes", "--no-backup",
                      "--", info["id"])
    assert restore.exit_code == 0, restore.output
    assert digests(env, "target") == before
    assert_clean(names)


def test_rollback_with_hostile_names(hostile_env: tuple[TestEnv, Hostile]) -> None:
    env, names = hostile_env
    create_tables(env.src, names, 1_000, "src")
    create_tables(env.dst, names, 400, "old")
    before = digests(env, "target")
    sync = env.run("sync", "--yes", "--json")
    assert sync.exit_code == 0, sync.output
    assert digests(env, "target") == digests(env, "source")
    result = env.run("rollback", json.loads(sync.stdout)["run_id"], "--yes", "--json")
    assert result.exit_code == 0, result.output
    assert digests(env, "target") == before
    assert_clean(names)


def test_backup_restore_with_hostile_names(hostile_env: tuple[TestEnv, Hostile]) -> None:
    env, names = hostile_env
    create_tables(env.dst, names, 800, "tgt")
    before = digests(env, "target")
    created = env.run("backup", "create", "--env", "production", "--json")
    assert created.exit_code == 0, created.output
    backup_id = json.loads(created.stdout)["id"]
    assert backup_id.startswith(env.database)  # the database name leads the id
    env.dst(*[f"UPDATE {q(t)} SET v = 'changed' WHERE id % 3 = 0" for t in names.tables],
            f"DELETE FROM {q('-e')} WHERE id > 100")
    assert digests(env, "target") != before
    # An id that starts with '-' is given after `--` on dumpload's own command line.
    result = env.run("backup", "restore", "--env", "production", "--yes", "--", backup_id)
    assert result.exit_code == 0, result.output
    assert digests(env, "target") == before
    view = env.dst(f"SELECT COUNT(*) FROM {q(names.view)}")
    assert view == [(800,)]
    assert_clean(names)


def test_data_with_hostile_names(hostile_env: tuple[TestEnv, Hostile]) -> None:
    env, names = hostile_env
    create_tables(env.src, names, 20_000, "src")
    create_tables(env.dst, names, 10, "old")
    result = env.run("data", "--yes", "--threads", "2")
    assert result.exit_code == 0, result.output
    assert digests(env, "target") == digests(env, "source")
    triggers = env.dst("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS "
                       f"WHERE TRIGGER_SCHEMA = '{env.database}'")
    assert triggers == [(names.trigger,)]
    assert_clean(names)


def test_export_and_import_with_hostile_names(hostile_env: tuple[TestEnv, Hostile]) -> None:
    env, names = hostile_env
    create_tables(env.src, names, 5_000, "src")
    out = env.folder / "export"
    result = env.run("export", "--env", "development", "--out", str(out), "--tables", "*")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    files = {t["name"]: t["file"] for t in manifest["tables"]}
    assert set(names.tables) <= set(files)
    assert all((out / files[t]).is_file() and "/" not in files[t] for t in names.tables)
    imported = env.run("import", str(out), "--env", "production", "--yes")
    assert imported.exit_code == 0, imported.output
    assert {t: d for t, d in digests(env, "target").items() if t in names.tables} == {
        t: d for t, d in digests(env, "source").items() if t in names.tables}
    assert_clean(names)


def test_config_database_name_reaches_tools_as_one_word(
        hostile_env: tuple[TestEnv, Hostile]) -> None:
    """The config keeps the leading '-' of the database name verbatim."""
    env, _ = hostile_env
    assert load_config(env.config_path).source.database == env.database
