"""Foundation against real servers: doctor, tables, connections, secrets, the tool wrapper."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dumpload.cli import cli
from dumpload.config import load_config
from dumpload.tools import Process, base_argv, defaults_file, find_binary
from tests.support import TestEnv, dumpload_command

SECRET = "Sup3r-secret-#pw"


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*prefix, name))
        if isinstance(command, click.Group):
            out += all_commands(command, (*prefix, name))
    return out


@pytest.mark.parametrize("path", all_commands(cli), ids=" ".join)
def test_every_command_has_help(path: tuple[str, ...]) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    body = result.stdout.split("\n\n", 2)
    assert len(body) > 1 and body[1].strip(), f"no help text for {' '.join(path)}"


def test_doctor_passes_on_the_sandbox(env: TestEnv) -> None:
    result = env.run("doctor")
    assert result.exit_code == 0, result.stdout + result.stderr
    assert "local_infile" in result.stdout and "✗" not in result.stdout


def test_doctor_flags_local_infile_off_with_a_hint(env: TestEnv) -> None:
    env.dst("SET GLOBAL local_infile = 0")
    try:
        result = env.run("doctor", "--env", "production", "--json")
    finally:
        env.dst("SET GLOBAL local_infile = 1")
    assert result.exit_code == 1
    doc = json.loads(result.stdout)
    assert doc["exit_code"] == 1 and doc["error"] and doc["hint"]
    checks = {c["name"]: c for c in doc["checks"]}
    assert checks["local_infile"]["ok"] is False
    assert "SET GLOBAL local_infile" in checks["local_infile"]["hint"]
    assert checks["connection"]["ok"] and checks["privileges"]["ok"]


def test_doctor_reports_missing_privileges(env: TestEnv) -> None:
    user = f"dl_ro_{env.database[-6:]}"
    env.dst(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'",
            f"GRANT SELECT ON `{env.database}`.* TO '{user}'@'%'")
    try:
        doc = json.loads(env.config_path.read_text())
        doc["databases"]["production"].update(user=user, password=SECRET)
        env.config_path.write_text(json.dumps(doc))
        result = env.run("doctor", "--env", "production", "--json")
        doc = json.loads(result.stdout)
        checks = {c["name"]: c for c in doc["checks"]}
        assert result.exit_code == 1 and doc["exit_code"] == 1
        assert not checks["privileges"]["ok"] and "ALTER" in checks["privileges"]["detail"]
        fix = checks["privileges"]["hint"]
        assert fix.startswith("GRANT ") and f"TO '{user}'@'%';" in fix
        for statement in fix.split(";"):  # the fix column is SQL the server runs as it is
            if statement.strip():
                env.target.sql(None, statement)
        result = env.run("doctor", "--env", "production", "--json")
        assert result.exit_code == 0, result.stdout
        assert all(c["ok"] for c in json.loads(result.stdout))
    finally:
        env.dst(f"DROP USER '{user}'@'%'")


def test_tables_lists_engine_rows_and_sizes(env: TestEnv) -> None:
    env.src("CREATE TABLE `a b` (id INT PRIMARY KEY, v VARCHAR(10)) ENGINE=InnoDB",
            "INSERT INTO `a b` VALUES (1,'x'),(2,'y')", "CREATE VIEW v AS SELECT 1 AS one")
    result = env.run("tables", "--env", "development", "--json")
    assert result.exit_code == 0, result.stderr
    rows = {t["name"]: t for t in json.loads(result.stdout)}
    assert rows["a b"]["engine"] == "InnoDB" and rows["v"]["kind"] == "VIEW"
    human = env.run("tables", "--env", "development")
    assert human.exit_code == 0 and "a b" in human.stdout


def test_wrong_password_exit_4_and_never_shown(env: TestEnv) -> None:
    user = f"dl_pw_{env.database[-6:]}"
    env.dst(f"CREATE USER '{user}'@'%' IDENTIFIED BY 'the-right-one'")
    try:
        doc = json.loads(env.config_path.read_text())
        doc["databases"]["production"].update(user=user, password=SECRET)
        env.config_path.write_text(json.dumps(doc))
        result = env.run("tables", "--env", "production")
        assert result.exit_code == 4
        for word in ("production", env.target.host, str(env.target.port), user):
            assert word in result.stderr
        logs = "".join(p.read_text() for p in (env.folder / "logs").glob("*.log"))
        assert SECRET not in result.stdout + result.stderr + logs
        # `tables` only reads: its one line in commands.log carries the exit code
        assert "exit=4" in (env.folder / "logs" / "commands.log").read_text()
    finally:
        env.dst(f"DROP USER '{user}'@'%'")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_server_fails_after_the_configured_retries(env: TestEnv) -> None:
    doc = json.loads(env.config_path.read_text())
    doc["databases"]["production"]["port"] = free_port()
    doc["settings"].update(connection_timeout=2, retry_attempts=3)
    env.config_path.write_text(json.dumps(doc))
    started = time.monotonic()
    result = env.run("tables", "--env", "production")
    elapsed = time.monotonic() - started
    assert result.exit_code == 4 and "cannot connect" in result.stderr
    assert elapsed < 2 * 3 + 8  # timeout × attempts + backoff
    # attempts 1 and 2 were retried (warnings on stderr), 3 was the last
    assert result.stderr.count("retrying") == 2, result.stderr


def test_tls_configured_but_server_plaintext_is_refused(env: TestEnv, tmp_path: Path) -> None:
    ca_key, ca = tmp_path / "ca.key", tmp_path / "ca.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=dumpload-test-ca", "-keyout", str(ca_key), "-out", str(ca)],
                   check=True, capture_output=True)
    doc = json.loads(env.config_path.read_text())
    doc["databases"]["production"]["ssl_ca"] = str(ca)
    env.config_path.write_text(json.dumps(doc))
    result = env.run("tables", "--env", "production")
    assert result.exit_code == 4
    assert "TLS" in result.stderr


def test_no_password_in_any_process_argv_or_environment(env: TestEnv) -> None:
    """While the dump binary runs, no /proc/*/cmdline or environ holds the password."""
    user = f"dl_argv_{env.database[-6:]}"
    env.src(f"CREATE USER '{user}'@'%' IDENTIFIED BY '{SECRET}'",
            f"GRANT ALL ON `{env.database}`.* TO '{user}'@'%'",
            "CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(200))",
            "INSERT INTO big SELECT seq, REPEAT('x', 200) FROM seq_1_to_200000")
    doc = json.loads(env.config_path.read_text())
    doc["databases"]["development"].update(user=user, password=SECRET)
    env.config_path.write_text(json.dumps(doc))
    db = load_config(env.config_path).source
    binary = find_binary("dump", "mariadb")
    seen: list[str] = []
    try:
        with defaults_file(db, binary) as defaults:
            assert defaults.option.startswith("--defaults-extra-file=/dev/fd/")
            assert oct(os.fstat(defaults.fd).st_mode & 0o777) == "0o600"
            argv = [*base_argv(binary, defaults), "--single-transaction", "--", db.database, "big"]
            with Process(argv, what="mariadb-dump", defaults=defaults) as proc:
                reader = threading.Thread(target=lambda: [time.sleep(0.01) for _ in iter(
                    lambda: proc.stdout.read(65536), b"")])
                reader.start()
                seen = scan_proc_for(SECRET.encode(), proc.pid)
                reader.join()
                proc.check()
    finally:
        env.src(f"DROP USER '{user}'@'%'")
    assert seen == [f"checked {proc.pid}"]


def scan_proc_for(secret: bytes, pid: int) -> list[str]:
    """Scan every process's cmdline and environ; report leaks and that `pid` was seen."""
    seen = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        for name in ("cmdline", "environ"):
            try:
                data = (entry / name).read_bytes()
            except OSError:
                continue
            if secret in data:
                seen.append(f"leak in {entry.name}/{name}")
        if int(entry.name) == pid:
            seen.append(f"checked {pid}")
    return seen


def test_installed_command_runs_as_a_real_process(env: TestEnv) -> None:
    result = env.run_process("doctor", "--env", "development")
    assert result.returncode == 0, result.stdout + result.stderr
    module = subprocess.run([sys.executable, "-m", "dumpload", "--version"],
                            capture_output=True, text=True)
    assert module.returncode == 0 and "dumpload" in module.stdout
    assert os.path.basename(dumpload_command()) == "dumpload"


def test_run_log_records_command_version_and_servers(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)")
    assert env.run("backup", "create", "--env", "development").exit_code == 0
    run_log = sorted((env.folder / "logs").glob("replicator_*.log"))[-1].read_text()
    assert "command: dumpload" in run_log and "dumpload 0." in run_log
    assert f"{env.source.host}:{env.source.port}" in run_log


def test_read_only_commands_log_one_line_each_in_one_file(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)")
    env.write_config(data_tables=["t"])
    calls = [("analyze",), ("verify",), ("tables", "--env", "development"), ("config", "show"),
             ("backup", "list"), ("doctor",), ("tables", "--env", "nope")]
    for args in calls:
        env.run(*args)
    logs = env.folder / "logs"
    assert not list(logs.glob("replicator_*.log"))
    lines = (logs / "commands.log").read_text().splitlines()
    assert len(lines) == len(calls)
    assert all(" exit=0 " in line for line in lines[:-1]), lines
    assert " exit=3 " in lines[-1] and "unknown environment 'nope'" in lines[-1]


def test_run_logs_are_rotated_by_age_and_count(tmp_path: Path) -> None:
    from dumpload.logs import rotate_run_logs

    old = time.time() - 40 * 86400
    for day in range(1, 29):
        path = tmp_path / f"replicator_202401{day:02d}_000000.log"
        path.write_text("x")
        if day <= 3:
            os.utime(path, (old, old))
    deleted = rotate_run_logs(tmp_path, retention_days=30, keep=20)
    left = sorted(p.name for p in tmp_path.glob("replicator_*.log"))
    assert len(left) == 20 and left[0] == "replicator_20240109_000000.log"
    assert len(deleted) == 8
    assert rotate_run_logs(tmp_path, retention_days=None, keep=20) == []


def test_demo_help_prints_usage_and_starts_nothing(tmp_path: Path) -> None:
    demo = Path(__file__).resolve().parent.parent / "scripts" / "demo"
    env = {**os.environ, "XDG_RUNTIME_DIR": str(tmp_path)}
    result = subprocess.run([str(demo), "--help"], capture_output=True, text=True, timeout=30,
                            env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: scripts/demo")
    assert f"{tmp_path}/dumpload-demo" in result.stdout  # per-user default folder
    assert "sandbox stop --dir" in result.stdout
    assert list(tmp_path.iterdir()) == []
    bad = subprocess.run([str(demo), "--nope"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "usage:" in bad.stderr
