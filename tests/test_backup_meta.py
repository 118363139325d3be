"""What a backup records for ops: binlog/GTID position of its snapshot, routines, events.

The sandbox servers run without binary logs, so the binlog test starts a server of its own
with `--log-bin` (a private data dir and port, stopped at the end).
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from dumpload.backup import create_backup, meta
from dumpload.config import load_config
from tests.support import Server, TestEnv, make_config


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def binlog_server() -> Iterator[Server]:
    server_bin = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
    root = Path(tempfile.mkdtemp(prefix="dl-binlog-"))
    data = root / "data"
    subprocess.run(["mariadb-install-db", "--no-defaults", f"--datadir={data}",
                    "--auth-root-authentication-method=normal", "--skip-test-db",
                    "--skip-name-resolve"], check=True, capture_output=True)
    port = _free_port()
    proc = subprocess.Popen([server_bin, "--no-defaults", "--user=root", f"--datadir={data}",
                             f"--socket={root}/s.sock", f"--port={port}",
                             "--bind-address=127.0.0.1", "--log-bin=binlog", "--server-id=7",
                             f"--log-error={root}/error.log", "--innodb-buffer-pool-size=64M",
                             "--skip-name-resolve"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while subprocess.run(["mariadb", f"--socket={root}/s.sock", "-uroot", "-e",
                          "CREATE USER IF NOT EXISTS root@'127.0.0.1'; GRANT ALL ON *.* TO "
                          "root@'127.0.0.1' WITH GRANT OPTION"],
                         capture_output=True).returncode != 0:
        assert proc.poll() is None and time.monotonic() < deadline, "binlog server did not start"
        time.sleep(0.3)
    try:
        yield Server("binlog", "127.0.0.1", port)
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(root, ignore_errors=True)


def test_backup_records_binlog_file_position_and_gtid(binlog_server: Server,
                                                      tmp_path: Path) -> None:
    db = "shop_binlog"
    binlog_server.sql(None, f"DROP DATABASE IF EXISTS {db}", f"CREATE DATABASE {db}")
    binlog_server.sql(db, "CREATE TABLE t (id INT PRIMARY KEY)",
                      "INSERT INTO t SELECT seq FROM seq_1_to_100")
    status = binlog_server.sql(None, "SHOW MASTER STATUS")[0]
    gtid = binlog_server.sql(None, "SELECT @@gtid_binlog_pos")[0][0]
    doc = make_config(binlog_server and _servers(binlog_server), db)
    (tmp_path / "config.json").write_text(json.dumps(doc))
    config = load_config(tmp_path / "config.json")
    info = create_backup(config, config.env("development"))
    # Written after the snapshot: must not move the recorded position.
    binlog_server.sql(db, "INSERT INTO t VALUES (1000)")
    assert info.manifest["binlog"] == {"file": status[0], "position": int(status[1]),
                                       "gtid": gtid}
    partial = create_backup(config, config.env("development"), ["t"])
    assert partial.manifest["binlog"]["position"] > int(status[1])


def _servers(server: Server):  # noqa: ANN202
    from tests.support import Servers
    return Servers(server, Server("target", "127.0.0.1", 1))


def test_no_binlog_no_position(env: TestEnv) -> None:
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)")
    config = load_config(env.config_path)
    assert create_backup(config, config.env("production")).manifest["binlog"] is None


def test_full_backup_has_routines_and_events_and_restores_them(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)",
            "CREATE PROCEDURE p1() SELECT COUNT(*) FROM t",
            "CREATE FUNCTION f1(x INT) RETURNS INT DETERMINISTIC RETURN x * 2",
            "CREATE EVENT e1 ON SCHEDULE EVERY 1 DAY DO DELETE FROM t WHERE id < 0")
    result = env.run("backup", "create", "--env", "development", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    info = load_config(env.config_path)
    manifest = json.loads(Path(doc["path"].replace(".sql.zst", ".manifest.json")).read_text())
    assert manifest["objects"] == {"procedures": 1, "functions": 1, "events": 1}
    assert {f["kind"] for f in manifest["frames"]} >= {"routines", "events"}
    restored = env.run("backup", "restore", doc["id"], "--env", "production", "--yes")
    assert restored.exit_code == 0, restored.stderr
    assert env.dst("SELECT f1(21)") == [(42,)]
    assert env.dst(f"SELECT EVENT_NAME FROM information_schema.EVENTS "
                   f"WHERE EVENT_SCHEMA = '{env.database}'") == [("e1",)]
    assert info is not None


def test_dump_missing_a_routine_body_is_refused() -> None:
    capture = meta.MetaCapture(lambda b: None, lambda k, n: None)
    capture.section("routines", None)
    capture.write(b"--\n-- Dumping routines for database 'x'\n--\n"
                  b"-- insufficient privileges to SHOW CREATE FUNCTION `f1`\n")
    from dumpload.errors import BackupError
    with pytest.raises(BackupError, match="function `f1`"):
        meta.check_objects("prod", capture, {"procedures": 0, "functions": 1, "events": 0})
    ok = meta.MetaCapture(lambda b: None, lambda k, n: None)
    ok.section("routines", None)
    ok.write(b"/*!50003 DROP PROCEDURE IF EXISTS `p` */;\n")
    with pytest.raises(BackupError, match="functions"):
        meta.check_objects("prod", ok, {"procedures": 1, "functions": 1, "events": 0})
    assert meta.check_objects("prod", ok, {"procedures": 1}) == {
        "procedures": 1, "functions": 0, "events": 0}


def test_parse_binlog_comments() -> None:
    text = (b"-- CHANGE MASTER TO MASTER_USE_GTID=slave_pos;\n\n"
            b"-- CHANGE MASTER TO MASTER_LOG_FILE='binlog.000003', MASTER_LOG_POS=1263;\n"
            b"...\n-- SET GLOBAL gtid_slave_pos='0-1-6,1-2-3';\n")
    assert meta.parse_binlog(text) == {"file": "binlog.000003", "position": 1263,
                                       "gtid": "0-1-6,1-2-3"}
    mysql = (b"-- CHANGE REPLICATION SOURCE TO SOURCE_LOG_FILE='b.000001', SOURCE_LOG_POS=4;\n")
    assert meta.parse_binlog(mysql) == {"file": "b.000001", "position": 4, "gtid": None}
    assert meta.parse_binlog(b"-- nothing\n") is None
