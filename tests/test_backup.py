"""Backups against real servers: round trips, partial restores, failures that leave nothing."""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from dumpload.backup import create_backup, find_backup, list_backups, verify_backup
from dumpload.config import load_config
from dumpload.errors import BackupError
from tests.support import TestEnv, schema_digest, table_digest

HARD = "hard `types` t"

HARD_DDL = f"""CREATE TABLE `{HARD.replace('`', '``')}` (
  id INT NOT NULL PRIMARY KEY,
  bin VARBINARY(300), blb LONGBLOB,
  s VARCHAR(20) NULL,
  u VARCHAR(40) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin,
  l VARCHAR(40) CHARACTER SET latin1,
  d DATE, dt DATETIME(6), ts TIMESTAMP(6) NULL DEFAULT NULL,
  dec65 DECIMAL(65,30), f FLOAT, dbl DOUBLE, bits BIT(64), j JSON, g GEOMETRY NULL,
  gen BIGINT AS (id * 2) STORED, genv VARCHAR(30) AS (CONCAT(IFNULL(s, '-'), '!')) VIRTUAL,
  `we``ird col` TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""

HARD_ROWS = [
    "(1, (SELECT UNHEX(GROUP_CONCAT(LPAD(HEX(seq), 2, '0') ORDER BY seq SEPARATOR '')) "
    "FROM seq_0_to_255), UNHEX('00FF00'), NULL, '😀 𝄞 ok', 'caf\\xe9', '0000-00-00', "
    "'0000-00-00 00:00:00', '2038-01-19 03:14:07.999999', "
    "'12345678901234567890123456789012345.123456789012345678901234567891', "
    "3.402823e38, 1.7976931348623157e308, b'1010101010101010101010101010101010101010101010101010'"
    ", '{\"a\": [1, 2.5, null, \"x\"]}', ST_GeomFromText('POINT(1 2)'), DEFAULT, DEFAULT, "
    "'line1\\nline2\\ttab ''quote'' \\\\ back')",
    "(2, '', '', '', '', '', NULL, NULL, '1970-01-01 00:00:01', -0.000000000000000000000000000001"
    ", -1.175494e-38, 4.9e-324, b'0', 'null', NULL, DEFAULT, DEFAULT, '')",
    "(3, NULL, NULL, 'NULL', 'NULL', NULL, '2024-02-29', '9999-12-31 23:59:59.999999', NULL, "
    "0, 0, -0.0, NULL, '[]', ST_GeomFromText('POLYGON((0 0,1 0,1 1,0 0))'), DEFAULT, DEFAULT, "
    "NULL)",
]


def make_hard(t: TestEnv, side: str = "src") -> None:
    run = t.src if side == "src" else t.dst
    run(HARD_DDL, f"INSERT INTO `{HARD.replace('`', '``')}` VALUES " + ", ".join(HARD_ROWS))


def make_tables(t: TestEnv, n: int, rows: int = 50, side: str = "src") -> list[str]:
    run = t.src if side == "src" else t.dst
    names = [f"t{i}" for i in range(n)]
    for name in names:
        run(f"CREATE TABLE {name} (id INT PRIMARY KEY, v VARCHAR(40))",
            f"INSERT INTO {name} SELECT seq, CONCAT('{name}-', seq) FROM seq_1_to_{rows}")
    return names


def config(t: TestEnv):  # noqa: ANN201
    return load_config(t.config_path)


def history(t: TestEnv) -> list[dict]:
    path = t.folder / "logs" / "backup_history.log"
    return [json.loads(x) for x in path.read_text().splitlines()] if path.exists() else []


def backup_files(t: TestEnv, env: str = "development") -> list[str]:
    folder = t.folder / "backups" / env
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_round_trip_hard_types_and_hand_restore(env: TestEnv) -> None:
    make_hard(env)
    make_tables(env, 2)
    env.src("CREATE VIEW v AS SELECT id, v FROM t0",
            "CREATE TRIGGER trg BEFORE INSERT ON t1 FOR EACH ROW SET NEW.v = UPPER(NEW.v)")
    result = env.run("backup", "create", "--env", "development", "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["status"] == "ok" and set(doc["tables"]) == {HARD, "t0", "t1"}
    assert doc["views"] == ["v"] and doc["rows"][HARD] == 3
    assert env.run("backup", "verify", doc["id"]).exit_code == 0
    # Restore into the other env (the target server).
    result = env.run("backup", "restore", doc["id"], "--env", "production", "--yes")
    assert result.exit_code == 0, result.output
    expected = schema_digest(env.source, env.database)
    assert schema_digest(env.target, env.database) == expected
    assert env.dst("SELECT COUNT(*) FROM information_schema.TRIGGERS "
                   f"WHERE TRIGGER_SCHEMA='{env.database}'")[0][0] == 1
    assert env.dst("SELECT * FROM v ORDER BY id LIMIT 1") == [(1, "t0-1")]
    # By hand, with the real client and no dumpload: zstd -dc FILE | mariadb DB.
    env.dst(*(f"DROP TABLE `{n.replace('`', '``')}`" for n in expected), "DROP VIEW v")
    sh = (f"zstd -dc '{doc['path']}' | mariadb -h {env.target.host} -P {env.target.port} "
          f"-u root {env.database}")
    subprocess.run(["sh", "-c", sh], check=True, capture_output=True)
    assert schema_digest(env.target, env.database) == expected
    with_header = subprocess.run(["sh", "-c", f"zstd -dc '{doc['path']}' | head -1"],
                                 capture_output=True, check=True).stdout
    assert b"sandbox" not in with_header  # MySQL's client would refuse that line


def test_single_table_restore_from_many_table_backup(env: TestEnv) -> None:
    names = make_tables(env, 8, side="dst")
    before = schema_digest(env.target, env.database)
    info = create_backup(config(env), config(env).env("production"))
    assert [f.kind for f in info.frames].count("table") == 8
    env.dst("DELETE FROM t3 WHERE id > 10", "UPDATE t5 SET v = 'changed'")
    result = env.run("backup", "restore", info.id, "--env", "production", "--tables", "t3",
                     "--yes")
    assert result.exit_code == 0, result.output
    assert table_digest(env.target, env.database, "t3") == before["t3"]
    assert table_digest(env.target, env.database, "t5") != before["t5"]  # untouched
    pre = [b for b in list_backups(config(env), "production") if b.label == "pre-restore"]
    assert len(pre) == 1 and pre[0].tables == ["t3"] and pre[0].rows == {"t3": 10}
    # The pre-restore backup undoes the restore.
    assert env.run("backup", "restore", pre[0].id, "--env", "production", "--yes",
                   "--no-backup").exit_code == 0
    assert env.dst("SELECT COUNT(*) FROM t3")[0][0] == 10
    assert len(names) == 8


def test_restore_globs_dry_run_and_latest(env: TestEnv) -> None:
    make_tables(env, 3)
    env.run("backup", "create", "--env", "development", "--tables", "t1", "--tables", "t2",
            "--label", "two")
    info = find_backup(config(env), "development", "latest")
    assert info.tables == ["t1", "t2"] and info.id.endswith("_two")
    dry = env.run("backup", "restore", "latest", "--env", "production", "--tables", "t*",
                  "--dry-run", "--json")
    assert dry.exit_code == 0 and json.loads(dry.stdout)["tables"] == ["t1", "t2"] or \
        sorted(json.loads(dry.stdout)["tables"]) == ["t1", "t2"]
    assert env.dst("SHOW TABLES") == []
    nope = env.run("backup", "restore", "latest", "--env", "production", "--tables", "nope",
                   "--yes")
    assert nope.exit_code == 2 and "no table matches 'nope'; tables on backup " in nope.stderr
    refused = env.run("backup", "restore", "latest", "--env", "production")
    assert refused.exit_code == 2 and env.dst("SHOW TABLES") == []


def test_same_second_backups_do_not_collide(env: TestEnv) -> None:
    make_tables(env, 1, rows=3)
    cfg = config(env)
    a = create_backup(cfg, cfg.env("development"), ["t0"])
    b = create_backup(cfg, cfg.env("development"), ["t0"])
    assert a.id != b.id and a.path.exists() and b.path.exists()


def test_damaged_backups_are_refused_by_verify_and_restore(env: TestEnv) -> None:
    make_tables(env, 2, rows=2000)
    cfg = config(env)
    info = create_backup(cfg, cfg.env("development"))
    good = info.path.read_bytes()
    # Truncated.
    info.path.write_bytes(good[: len(good) // 2])
    assert env.run("backup", "verify", info.id).exit_code == 7
    result = env.run("backup", "restore", info.id, "--env", "production", "--yes")
    assert result.exit_code == 7 and "damaged" in result.output
    # One flipped byte in the middle of a table frame.
    flipped = bytearray(good)
    frame = next(f for f in info.frames if f.kind == "table")
    flipped[frame.offset + frame.length // 2] ^= 0x01
    info.path.write_bytes(bytes(flipped))
    assert env.run("backup", "verify", info.id).exit_code == 7
    assert env.run("backup", "restore", info.id, "--env", "production", "--yes").exit_code == 7
    assert env.dst("SHOW TABLES") == []  # nothing written
    info.path.write_bytes(good)
    assert verify_backup(info.path).frames == len(info.frames)


def fake_dump(folder: Path, body: str) -> dict[str, str]:
    """A `mariadb-dump` first on PATH that answers --version and then runs `body`."""
    folder.mkdir(exist_ok=True)
    script = folder / "mariadb-dump"
    script.write_text("#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'mariadb-dump  Ver 10.19 "
                      "Distrib 10.11.19-MariaDB, for linux'; exit 0; fi\n" + body)
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{folder}:{os.environ['PATH']}"}


def assert_failed_cleanly(env: TestEnv, result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 7, result.stderr
    assert [n for n in backup_files(env) if n.endswith(".sql.zst") or "partial" in n] == []
    assert history(env)[-1]["status"] == "failed"


def test_dump_tool_exit_nonzero_leaves_nothing(env: TestEnv) -> None:
    make_tables(env, 1)
    path_env = fake_dump(env.folder / "bin", "echo '-- MariaDB dump'\necho 'boom' >&2\nexit 2\n")
    result = env.run_process("backup", "create", "--env", "development", env=path_env)
    assert_failed_cleanly(env, result)
    assert "boom" in result.stderr and "boom" in history(env)[-1]["error"]


def test_missing_table_fails_with_history_line(env: TestEnv) -> None:
    make_tables(env, 1)
    # The command refuses a name that matches nothing before it starts (exit 2)...
    result = env.run_process("backup", "create", "--env", "development", "--tables", "nope")
    assert result.returncode == 2 and "no table matches 'nope'; tables on development: t0" \
        in result.stderr
    assert backup_files(env) == [] and history(env) == []
    # ...and the library, asked for a table that is gone, fails with a history line.
    with pytest.raises(BackupError):
        create_backup(config(env), config(env).env("development"), ["nope"])
    assert backup_files(env) == [] and history(env)[-1]["status"] == "failed"


def test_dump_tool_killed_mid_stream_leaves_nothing(env: TestEnv) -> None:
    make_tables(env, 3, rows=3000)
    real = shutil.which("mariadb-dump")
    path_env = fake_dump(env.folder / "bin", f'"{real}" "$@" | head -c 20000\nkill -9 $$\n')
    result = env.run_process("backup", "create", "--env", "development", env=path_env)
    assert_failed_cleanly(env, result)


def test_full_disk_leaves_nothing(env: TestEnv) -> None:
    env.src("CREATE TABLE big (id INT PRIMARY KEY, b LONGBLOB)",
            "INSERT INTO big SELECT seq, RANDOM_BYTES(1024) FROM seq_1_to_400")
    limit = 200_000  # bytes any one file may grow to: the backup needs ~800 KB

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    result = env.run_process("backup", "create", "--env", "development", preexec_fn=small_files)
    assert_failed_cleanly(env, result)
    assert "File too large" in history(env)[-1]["error"] or "space" in result.stderr


def test_sigkill_of_dumpload_mid_backup_leaves_nothing(env: TestEnv) -> None:
    make_tables(env, 1)
    path_env = fake_dump(env.folder / "bin", "echo '-- MariaDB dump'\nsleep 30\n")
    from tests.support import dumpload_command
    proc = subprocess.Popen([dumpload_command(), "--config", str(env.config_path), "backup",
                             "create", "--env", "development"], env=path_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    folder = env.folder / "backups" / "development"
    deadline = time.monotonic() + 20
    while not any("partial" in n for n in backup_files(env)) and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    deadline = time.monotonic() + 10
    while (backup_files(env) or not history(env)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert backup_files(env) == [], list(folder.iterdir())
    assert history(env)[-1]["status"] == "failed"
    subprocess.run(["pkill", "-P", str(proc.pid)], check=False)  # the fake's sleep, if any


def age(info_path: Path, manifest_path: Path, database: str, days: float,
        status: str | None = "ok") -> str:
    """Copy a real backup under a new id whose stamp (and mtime) is `days` old."""
    folder = info_path.parent
    new_id = f"{database}_{datetime.now() - timedelta(days=days):%Y%m%d_%H%M%S}"
    shutil.copy(info_path, folder / f"{new_id}.sql.zst")
    if status is not None:
        doc = json.loads(manifest_path.read_text())
        doc.update(id=new_id, file=f"{new_id}.sql.zst", status=status)
        (folder / f"{new_id}.manifest.json").write_text(json.dumps(doc))
    ts = time.time() - days * 86400
    os.utime(folder / f"{new_id}.sql.zst", (ts, ts))
    return new_id


def test_prune_days_and_count_with_failed_ones(env: TestEnv) -> None:
    make_tables(env, 1, rows=3)
    env.write_config(backup_retention_days=10, max_backups=2)
    cfg = config(env)
    info = create_backup(cfg, cfg.env("development"))   # newest good
    db = env.database
    good1 = age(info.path, info.manifest_path, db, 1)                # good, 2nd newest
    good2 = age(info.path, info.manifest_path, db, 2)                # good, 3rd: beyond max
    old = age(info.path, info.manifest_path, db, 20)                 # good, too old
    failed = age(info.path, info.manifest_path, db, 0.5, "failed")   # failed, older than newest
    bare = age(info.path, info.manifest_path, db, 30, None)          # no manifest
    dry = env.run("backup", "prune", "--env", "development", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.output
    doomed = json.loads(dry.stdout)["deleted"]
    assert sorted(doomed) == sorted([good2, old, failed, bare])
    assert len(list_backups(cfg, "development")) == 6  # dry run deleted nothing
    assert env.run("backup", "prune", "--env", "development").exit_code == 2  # no --yes
    assert env.run("backup", "prune", "--env", "development", "--yes").exit_code == 0
    left = [b.id for b in list_backups(cfg, "development")]
    assert left == [info.id, good1]


def test_prune_keeps_newest_good_however_old(env: TestEnv) -> None:
    make_tables(env, 1, rows=3)
    env.write_config(backup_retention_days=1, max_backups=1)
    cfg = config(env)
    info = create_backup(cfg, cfg.env("development"))
    old = age(info.path, info.manifest_path, env.database, 100)
    info.path.unlink()
    info.manifest_path.unlink()
    assert env.run("backup", "prune", "--env", "development", "--yes").exit_code == 0
    assert [b.id for b in list_backups(cfg, "development")] == [old]


def test_list_json_and_empty_table_list(env: TestEnv) -> None:
    make_tables(env, 2, rows=5)
    cfg = config(env)
    create_backup(cfg, cfg.env("development"), ["t1"], label="one")
    result = env.run("backup", "list", "--env", "development", "--json")
    docs = json.loads(result.stdout)
    assert result.exit_code == 0 and len(docs) == 1
    assert docs[0]["tables"] == ["t1"] and docs[0]["status"] == "ok" and docs[0]["size"] > 0
    assert docs[0]["label"] == "one" and docs[0]["env"] == "development"
    from dumpload.errors import BackupError
    with pytest.raises(BackupError):
        create_backup(cfg, cfg.env("development"), [])


def test_table_cut_into_row_frames_restores_byte_identical(
        env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    from dumpload.backup import frames
    monkeypatch.setattr(frames, "DATA_FRAME_BYTES", 1)  # every INSERT its own frame
    env.src("CREATE TABLE big (id INT PRIMARY KEY AUTO_INCREMENT, v VARCHAR(300), n INT,"
            " KEY (n)) ENGINE=InnoDB",
            "INSERT INTO big SELECT seq, REPEAT(CONCAT('r', seq), 20), seq % 97 "
            "FROM seq_1_to_30000",
            "CREATE TABLE kid (id INT PRIMARY KEY, big_id INT, FOREIGN KEY (big_id) "
            "REFERENCES big (id))",
            "INSERT INTO kid SELECT seq, seq * 3 FROM seq_1_to_500",
            "CREATE TABLE hits (n INT)",
            "CREATE TRIGGER trg AFTER INSERT ON big FOR EACH ROW INSERT INTO hits VALUES (1)")
    make_tables(env, 2)
    make_tables(env, 1, side="dst")
    env.dst("CREATE TABLE big (x INT)")
    expected = schema_digest(env.source, env.database)
    info = create_backup(config(env), config(env).env("development"))
    data = [f for f in info.frames if f.kind == "table_data" and f.name == "big"]
    assert len(data) >= 3
    assert env.run("backup", "restore", info.id, "--env", "production", "--yes").exit_code == 0
    assert schema_digest(env.target, env.database) == expected
    for t in ("big", "kid", "hits", "t0", "t1"):
        assert table_digest(env.target, env.database, t) == table_digest(
            env.source, env.database, t)
    assert env.dst("SELECT COUNT(*) FROM hits")[0][0] == 0  # the trigger came after the rows
    # The file is still one plain dump: zstd -dc FILE | mariadb DB.
    env.dst(*(f"DROP TABLE IF EXISTS {t}" for t in ("kid", "big", "hits", "t0", "t1")))
    sh = (f"zstd -dc '{info.path}' | mariadb -h {env.target.host} -P {env.target.port} "
          f"-u root {env.database}")
    subprocess.run(["sh", "-c", sh], check=True, capture_output=True)
    assert schema_digest(env.target, env.database) == expected


def test_a_frame_damaged_behind_a_matching_sha256_is_refused_by_the_load(env: TestEnv) -> None:
    """A restore checks the file's sha256 up front and each frame's zstd checksum as it
    loads: a data frame damaged under a manifest rewritten to match fails the load, and
    the live tables keep their rows."""
    make_tables(env, 2, rows=2000)
    cfg = config(env)
    info = create_backup(cfg, cfg.env("development"))
    env.dst("CREATE TABLE t0 (id INT PRIMARY KEY)", "INSERT INTO t0 VALUES (7)")
    damaged = bytearray(info.path.read_bytes())
    frame = next(f for f in info.frames if f.kind == "table_data")
    damaged[frame.offset + frame.length // 2] ^= 0x01
    info.path.write_bytes(bytes(damaged))
    manifest = json.loads(info.manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(bytes(damaged)).hexdigest()
    info.manifest_path.write_text(json.dumps(manifest))
    assert env.run("backup", "verify", info.id).exit_code == 7
    result = env.run("backup", "restore", info.id, "--env", "production", "--yes",
                     "--no-backup")
    assert result.exit_code == 7 and "damaged" in result.output, result.output
    assert "unchanged" in result.output
    assert env.dst("SELECT id FROM t0") == [(7,)]
