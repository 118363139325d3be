"""Rollback: a run's whole footprint put back as one swap, refused when unsafe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support import TestEnv, schema_digest

BASE = [
    "CREATE TABLE customers (id INT PRIMARY KEY, name VARCHAR(40))",
    "CREATE TABLE orders (id INT PRIMARY KEY, customer_id INT NOT NULL, total INT, "
    "CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id))",
    "CREATE TABLE log (id INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
    "INSERT INTO customers SELECT seq, CONCAT('c', seq) FROM seq_1_to_300",
    "INSERT INTO orders SELECT seq, 1 + seq % 300, seq FROM seq_1_to_2000",
]


def build(env: TestEnv) -> None:
    """Target: views v_keep (changed by the run), v_gone (dropped by it), a trigger the run
    replaces; source: new table, new column, new view, changed rows."""
    env.dst(*BASE,
            "CREATE VIEW v_keep AS SELECT id FROM customers",
            "CREATE VIEW v_gone AS SELECT id FROM orders",
            "CREATE TRIGGER trg_orders BEFORE INSERT ON orders FOR EACH ROW "
            "SET NEW.total = NEW.total + 1")
    env.src(*BASE, "ALTER TABLE customers ADD COLUMN email VARCHAR(60) NULL",
            "UPDATE customers SET name = UPPER(name)",
            "CREATE TABLE coupons (id INT PRIMARY KEY)", "INSERT INTO coupons VALUES (1), (2)",
            "CREATE VIEW v_keep AS SELECT id, name FROM customers",
            "CREATE VIEW v_new AS SELECT id FROM coupons",
            "CREATE TRIGGER trg_orders BEFORE INSERT ON orders FOR EACH ROW "
            "SET NEW.total = NEW.total + 2")


def catalog(env: TestEnv) -> dict:
    db = env.database
    return {
        "tables": schema_digest(env.target, db),
        "creates": {t: env.dst(f"SHOW CREATE TABLE {t}")[0][1] for (t,) in env.dst(
            f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{db}' "
            "AND TABLE_TYPE='BASE TABLE' ORDER BY 1")},
        "views": env.dst(f"SELECT TABLE_NAME, VIEW_DEFINITION FROM information_schema.VIEWS "
                         f"WHERE TABLE_SCHEMA='{db}' ORDER BY 1"),
        "triggers": env.dst(f"SELECT TRIGGER_NAME, ACTION_STATEMENT FROM "
                            f"information_schema.TRIGGERS WHERE TRIGGER_SCHEMA='{db}'"),
    }


def sync(env: TestEnv) -> str:
    result = env.run("sync", "--yes", "--json", "--allow-unsafe")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["run_id"]


def test_rollback_puts_back_tables_views_and_triggers_as_one_swap(env: TestEnv) -> None:
    build(env)
    before = catalog(env)
    run_id = sync(env)
    after = catalog(env)
    assert after != before and ("v_new",) in [(v,) for v, _ in after["views"]]
    dry = env.run("rollback", run_id, "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["run_id"] == run_id and plan["command"] == "sync" and plan["started"]
    assert "coupons" in plan["drop"] and "v_new" in plan["views_drop"]
    assert {"v_keep", "v_gone"} <= set(plan["views_restore"])
    assert {"customers", "orders"} <= set(plan["restore"]) and plan["changed_since_run"] == []
    assert catalog(env) == after  # a dry run writes nothing
    result = env.run("rollback", run_id, "--yes", "--json")
    assert result.exit_code == 0, result.stderr
    done = json.loads(result.stdout)
    assert done["pre_backup"] and "coupons" in done["dropped"]
    assert catalog(env) == before
    # Rolled back once: not again, and a later sync starts a new run with a new backup.
    again = env.run("rollback", run_id, "--yes")
    assert again.exit_code == 7 and "already rolled back" in again.stderr
    assert sync(env) != run_id


def test_rollback_with_a_missing_manifest_or_damaged_backup_changes_nothing(
        env: TestEnv) -> None:
    build(env)
    run_id = sync(env)
    after = catalog(env)
    folder = env.folder / "backups" / "production"
    manifest = next(folder.glob("*_pre-sync.manifest.json"))
    saved = manifest.read_bytes()
    manifest.unlink()
    result = env.run("rollback", run_id, "--yes")
    assert result.exit_code == 7 and "nothing was changed" in result.stderr
    assert catalog(env) == after
    manifest.write_bytes(saved)
    dump = next(folder.glob("*_pre-sync.sql.zst"))
    data = bytearray(dump.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dump.write_bytes(bytes(data))
    result = env.run("rollback", run_id, "--yes")
    assert result.exit_code == 7 and "damaged" in result.stderr
    assert catalog(env) == after
    assert not list(folder.glob("*pre-restore*"))  # refused before its own backup, too


def test_rollback_refuses_when_the_target_changed_since_the_run(env: TestEnv) -> None:
    build(env)
    before = catalog(env)
    run_id = sync(env)
    env.dst("INSERT INTO customers (id, name) VALUES (9999, 'written by the app')")
    dry = env.run("rollback", "--dry-run")
    assert dry.exit_code == 7 and "customers" in dry.stdout + dry.stderr
    refused = env.run("rollback", run_id, "--yes")
    assert refused.exit_code == 7 and "customers" in refused.stderr
    assert "--force" in refused.stderr
    assert env.dst("SELECT COUNT(*) FROM customers WHERE id = 9999") == [(1,)]
    forced = env.run("rollback", run_id, "--yes", "--force", "--json")
    assert forced.exit_code == 0, forced.stderr
    assert json.loads(forced.stdout)["forced_over"] == ["customers"]
    assert catalog(env) == before


def test_no_run_id_picks_the_latest_run_that_changed_something_and_says_so(
        env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    build(env)
    first = sync(env)
    # A later run that dies before changing anything (its backup cannot be written).
    env.src("UPDATE orders SET total = total + 1 WHERE id < 10")
    from dumpload import sync as sync_mod
    from dumpload.errors import BackupError

    def no_backup(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise BackupError("disk full (simulated)")
    monkeypatch.setattr(sync_mod, "create_backup", no_backup)
    assert env.run("sync", "--yes").exit_code == 7
    dry = env.run("rollback", "--dry-run")
    assert dry.exit_code == 0, dry.stderr
    assert f"no run id given: rolling back run {first}" in dry.stdout
    assert "later runs that changed nothing" in dry.stdout


def test_resumed_run_backs_up_again_what_changed_since_it_stopped(
        env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    build(env)
    from dumpload import sync as sync_mod
    from dumpload.errors import DataError
    real = sync_mod.copy_tables

    def fail(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise DataError("copy failed (simulated)")
    monkeypatch.setattr(sync_mod, "copy_tables", fail)
    assert env.run("sync", "--yes", "--allow-unsafe").exit_code == 6  # structure done
    # The application writes to a table the run had backed up, then the run resumes.
    env.dst("INSERT INTO orders (id, customer_id, total) VALUES (50000, 1, 7)")
    before_resume = schema_digest(env.target, env.database, ["orders"])
    monkeypatch.setattr(sync_mod, "copy_tables", real)
    resumed = env.run("sync", "--yes", "--json", "--allow-unsafe")
    assert resumed.exit_code == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["resumed"] and len(report["backups"]) == 2
    assert "resume" in report["backups"][1]
    # Rolling the run back keeps the application's row: orders comes from the fresh backup.
    assert env.run("rollback", report["run_id"], "--yes").exit_code == 0
    assert schema_digest(env.target, env.database, ["orders"]) == before_resume
    # The row as written (the run had already replaced the trigger: +2) survives.
    assert env.dst("SELECT total FROM orders WHERE id = 50000") == [(9,)]
    assert Path(env.folder / "logs" / "runs").is_dir()
