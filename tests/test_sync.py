"""The whole flow end to end against real servers: sync, its report, resume, rollback."""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, TestEnv, dumpload_command, schema_digest, wait_for

SCHEMA = [
    "CREATE TABLE countries (id INT PRIMARY KEY, code CHAR(2) NOT NULL, name VARCHAR(60))",
    "CREATE TABLE customers (id INT PRIMARY KEY, country_id INT NOT NULL, "
    "email VARCHAR(100) NOT NULL, phone VARCHAR(20) NULL, created DATETIME NOT NULL, "
    "KEY idx_country (country_id), UNIQUE KEY uq_email (email), "
    "CONSTRAINT fk_cust_country FOREIGN KEY (country_id) REFERENCES countries (id))",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, "
    "total DECIMAL(12,2) NOT NULL, note TEXT NULL, KEY idx_customer (customer_id), "
    "CONSTRAINT fk_order_customer FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE audit (id INT AUTO_INCREMENT PRIMARY KEY, order_id INT, what VARCHAR(20))",
    "CREATE VIEW big_orders AS SELECT id, total FROM orders WHERE total > 500",
    "CREATE TRIGGER trg_orders AFTER UPDATE ON orders FOR EACH ROW "
    "INSERT INTO audit (order_id, what) VALUES (NEW.id, 'update')",
]
ROWS = [
    "INSERT INTO countries SELECT seq, CONCAT(CHAR(64 + seq DIV 26 + 1), CHAR(65 + seq % 26)), "
    "CONCAT('Country ', seq) FROM seq_1_to_50",
    "INSERT INTO customers SELECT seq, 1 + seq % 50, CONCAT('c', seq, '@example.test'), "
    "IF(seq % 3 = 0, NULL, CONCAT('+1 555 ', seq)), '2024-01-01' + INTERVAL seq MINUTE "
    "FROM seq_1_to_20000",
]


def orders_rows(n: int) -> str:
    return (f"INSERT INTO orders SELECT seq, 1 + seq % 20000, (seq * 7919) % 100000 / 100, "
            f"IF(seq % 5 = 0, NULL, REPEAT(CONCAT('note ', seq, '\\t\\n'), 3)) "
            f"FROM seq_1_to_{n}")


def build(env: TestEnv, orders: int = 50_000) -> None:
    """Source: the full schema; target: drifted (missing column, old index, missing table,
    stale and missing rows)."""
    env.src(*SCHEMA, *ROWS, orders_rows(orders))
    env.dst(*SCHEMA[:2],
            "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, "
            "total DECIMAL(12,2) NOT NULL, note TEXT NULL, KEY idx_old (total), "
            "CONSTRAINT fk_order_customer FOREIGN KEY (customer_id) REFERENCES customers (id))",
            *ROWS, orders_rows(orders // 2), "ALTER TABLE customers DROP COLUMN phone",
            "UPDATE countries SET name = 'stale' WHERE id < 10")


def converged(env: TestEnv) -> None:
    analyze = env.run("analyze")
    assert analyze.exit_code == 0, analyze.stdout + analyze.stderr
    verify = env.run("verify")
    assert verify.exit_code == 0, verify.stdout + verify.stderr
    assert schema_digest(env.source, env.database) == schema_digest(env.target, env.database)


def test_sync_converges_and_reports(env: TestEnv) -> None:
    build(env)
    result = env.run("sync", "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "ok" and report["backup"]
    assert set(report["steps"]) == {"analyse", "backup", "structure", "data", "verify"}
    tables = {t["table"]: t for t in report["tables"]}
    assert tables["audit"]["action"] != "unchanged"  # created by the structure step
    assert any("phone" in c for c in tables["customers"]["structure_changes"])
    assert tables["orders"]["rows"] == 50_000 and tables["orders"]["verified"] is True
    assert report["totals"]["rows"] >= 50_000
    converged(env)
    metrics = (env.folder / "logs" / "performance_metrics.log").read_text()
    assert '"event": "sync"' in metrics and report["run_id"] in metrics
    backups = list((env.folder / "backups" / "production").glob("*_pre-sync.sql.zst"))
    assert len(backups) == 1 and report["backup"] == backups[0].name[:-len(".sql.zst")]


def test_rerun_with_nothing_to_do_says_so(env: TestEnv) -> None:
    build(env, orders=2_000)
    assert env.run("sync", "--yes").exit_code == 0
    again = env.run("sync", "--yes")
    assert again.exit_code == 0 and "nothing to do" in again.stdout
    assert len(list((env.folder / "backups" / "production").glob("*.sql.zst"))) == 1


def test_dry_run_writes_nothing_on_either_server(env: TestEnv) -> None:
    build(env, orders=2_000)
    before = (schema_digest(env.source, env.database), schema_digest(env.target, env.database))
    ddl_before = env.dst(f"SELECT TABLE_NAME, UPDATE_TIME IS NULL FROM information_schema.TABLES "
                         f"WHERE TABLE_SCHEMA = '{env.database}' ORDER BY 1")
    result = env.run("sync", "--dry-run")
    assert result.exit_code == 0, result.stderr
    assert "ALTER TABLE" in result.stdout and "dry run" in result.stdout
    after = (schema_digest(env.source, env.database), schema_digest(env.target, env.database))
    assert before == after
    assert ddl_before == env.dst(f"SELECT TABLE_NAME, UPDATE_TIME IS NULL FROM "
                                 f"information_schema.TABLES WHERE TABLE_SCHEMA = "
                                 f"'{env.database}' ORDER BY 1")
    assert not (env.folder / "backups").exists()
    assert env.run("analyze").exit_code == 1  # still different


def test_no_terminal_and_no_yes_refuses(env: TestEnv) -> None:
    build(env, orders=100)
    before = schema_digest(env.target, env.database)
    result = env.run("sync")
    assert result.exit_code == 2 and "--yes" in result.stderr
    assert schema_digest(env.target, env.database) == before


def test_unsafe_changes_stop_before_any_write(env: TestEnv) -> None:
    build(env, orders=100)
    env.dst("ALTER TABLE countries ADD COLUMN legacy INT NULL")  # only in target: unsafe drop
    before = schema_digest(env.target, env.database)
    dry = env.run("sync", "--dry-run")
    assert dry.exit_code == 5 and "DROP COLUMN `legacy`" in dry.stdout
    result = env.run("sync", "--yes")
    assert result.exit_code == 5 and "legacy" in result.stderr
    assert schema_digest(env.target, env.database) == before
    assert not (env.folder / "backups").exists()
    allowed = env.run("sync", "--yes", "--allow-unsafe")
    assert allowed.exit_code == 0, allowed.stderr
    converged(env)


def test_rollback_restores_the_previous_tables_byte_for_byte(env: TestEnv) -> None:
    build(env, orders=5_000)
    before = schema_digest(env.target, env.database)
    create_before = env.dst("SHOW CREATE TABLE customers")[0][1]
    sync = env.run("sync", "--yes", "--json")
    assert sync.exit_code == 0, sync.stderr
    run_id = json.loads(sync.stdout)["run_id"]
    result = env.run("rollback", run_id, "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert "audit" in done["dropped"] and "customers" in done["restored"]
    assert schema_digest(env.target, env.database) == before
    assert env.dst("SHOW CREATE TABLE customers")[0][1] == create_before


def run_in_background(env: TestEnv, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([dumpload_command(), "--config", str(env.config_path), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"},
                            **kwargs)


def test_sigkill_during_data_then_rerun_completes(env: TestEnv) -> None:
    build(env, orders=400_000)
    proc = run_in_background(env, "sync", "--yes", "--threads", "2")

    def loading() -> bool:
        return bool(env.dst(f"SELECT COUNT(*) FROM information_schema.TABLES WHERE "
                            f"TABLE_SCHEMA = '{env.database}' AND TABLE_NAME LIKE '\\_dl%'")[0][0])
    try:
        wait_for(loading)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert env.dst("SELECT COUNT(*) FROM orders")[0][0] in (200_000, 400_000)
    rerun = env.run_process("sync", "--yes")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "resuming run" in rerun.stdout
    converged(env)
    runs = list((env.folder / "logs" / "runs").glob("*.json"))
    assert len(runs) == 1  # the rerun continued the killed run


def sandbox(*args: str) -> None:
    folder = os.environ.get("DUMPLOAD_TEST_SANDBOX", "/tmp/dumpload-test-sandbox")
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sandbox"), *args, "--dir", folder],
                   check=True, capture_output=True)


@pytest.mark.skipif(bool(os.environ.get("DUMPLOAD_TEST_SOURCE_PORT")),
                    reason="needs the sandbox to stop and restart the target")
def test_target_stopped_during_structure_then_rerun_completes(env: TestEnv) -> None:
    build(env, orders=300_000)
    # A structure change that copies the big table keeps the step busy long enough.
    env.src("ALTER TABLE orders MODIFY total DECIMAL(14,3) NOT NULL")
    proc = run_in_background(env, "sync", "--yes")
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            if "→ structure" in line:
                break
        sandbox("stop-server", "target")
        output = proc.communicate(timeout=120)[0]
    finally:
        sandbox("restart-server", "target")
    assert proc.returncode in (4, 5), output
    assert "rerun `dumpload sync` to resume" in output
    rerun = env.run_process("sync", "--yes")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    converged(env)


def test_backup_that_cannot_be_written_stops_before_any_change(env: TestEnv) -> None:
    build(env, orders=20_000)
    before = schema_digest(env.target, env.database)

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 * 1024, 64 * 1024))
    result = env.run_process("sync", "--yes", preexec_fn=small_files)
    assert result.returncode == 7, result.stdout + result.stderr
    assert schema_digest(env.target, env.database) == before
    errors = (env.folder / "logs" / "error_summary.log").read_text()
    assert "step=backup" in errors
    assert not list(Path(env.folder / "backups").rglob("*.sql.zst"))
