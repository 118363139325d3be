"""`sync` shows each data table's strategy (in-place, delta, shadow) and why, dry run and
real run alike, chosen by the data copy's own decision; the run then does what it said."""

from __future__ import annotations

import json

import pytest

from tests.support import TestEnv, schema_digest

ROWS = 20_000   # ~1.5 MB: "large" against in_place_max_mb 0.1
WIDE = ("(id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NULL)")


def _fill(table: str, rows: int = ROWS) -> str:
    return f"INSERT INTO {table} SELECT seq, MD5(seq), seq FROM seq_1_to_{rows}"


def _build(env: TestEnv) -> None:
    """small → in-place; big → delta; trig → shadow (trigger); parent + child (FK, child
    large) → shadow; altered (large, a column added by the sync); fresh (large, created by
    the sync); same (identical)."""
    common = [
        "CREATE TABLE small (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO small VALUES (1, 'a'), (2, 'b'), (3, 'c')",
        f"CREATE TABLE big {WIDE}", _fill("big"),
        "CREATE TABLE trig (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO trig VALUES (1, 'a'), (2, 'b')",
        "CREATE TRIGGER trg_trig BEFORE UPDATE ON trig FOR EACH ROW SET NEW.name = NEW.name",
        "CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO parent VALUES (1, 'p1'), (2, 'p2')",
        "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT NOT NULL, v VARCHAR(40), "
        "CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
        f"INSERT INTO child SELECT seq, 1 + seq % 2, MD5(seq) FROM seq_1_to_{ROWS}",
        f"CREATE TABLE altered {WIDE}", _fill("altered"),
        "CREATE TABLE same (id INT PRIMARY KEY, name VARCHAR(20))",
        "INSERT INTO same VALUES (1, 'x')",
    ]
    env.src(*common, "ALTER TABLE altered ADD COLUMN extra INT NULL",
            "UPDATE altered SET extra = 1 WHERE id BETWEEN 100 AND 120",
            f"CREATE TABLE fresh {WIDE}", _fill("fresh"),
            "UPDATE small SET name = 'changed' WHERE id = 2",
            "UPDATE big SET v = 'changed' WHERE id BETWEEN 5000 AND 5100",
            "UPDATE trig SET name = 'changed' WHERE id = 1",
            "UPDATE child SET v = 'changed' WHERE id = 7",
            "UPDATE parent SET name = 'changed' WHERE id = 2")
    env.dst(*common)
    tables = ("small", "big", "trig", "parent", "child", "altered", "same")
    env.src(*(f"ANALYZE TABLE {t}" for t in (*tables, "fresh")))
    env.dst(*(f"ANALYZE TABLE {t}" for t in tables))
    env.write_config(in_place_max_mb=0.1)


LARGE = "large ("      # the reason of a table above in_place_max_mb starts so
EXPECTED = {           # table → (strategy, words its reason holds)
    "small": ("in-place", ["small"]),
    "big": ("delta", [LARGE, "delta by key ranges"]),
    "trig": ("shadow", ["trigger"]),
    "parent": ("shadow", ["FK group with child: large (", "no delta: FK"]),
    "child": ("shadow", [LARGE, "no delta: FK"]),
    "altered": ("delta", [LARGE, "delta by key ranges", "after the structure step"]),
    "fresh": ("shadow", [LARGE, "no delta: empty target"]),  # created empty by the sync
}


def _target_state(env: TestEnv) -> tuple[dict, list]:
    creates = [env.dst(f"SHOW CREATE TABLE `{t}`")[0][1] for (t,) in env.dst(
        "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
        "ORDER BY 1")]
    return schema_digest(env.target, env.database), creates


def test_sync_plan_shows_each_tables_strategy_and_the_run_keeps_it(
        env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "400")   # one line per table in the plan's text table
    _build(env)
    before = _target_state(env)
    dry = env.run("sync", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    doc = json.loads(dry.stdout)
    items = {d["table"]: d for d in doc["data"]}
    assert set(items) == set(EXPECTED) and doc["identical_data_tables"] == ["same"]
    for table, (strategy, words) in EXPECTED.items():
        assert items[table]["strategy"] == strategy, items[table]
        assert all(w in items[table]["strategy_reason"] for w in words), items[table]
    assert items["altered"]["reason"] == "structure changes"
    assert items["fresh"]["reason"] == "new table"

    text = env.run("sync", "--dry-run")
    assert text.exit_code == 0, text.stderr
    lines = {line.split()[1]: line for line in text.stdout.splitlines()
             if len(line.split()) > 2 and line.split()[1] in EXPECTED}
    for table, (strategy, words) in EXPECTED.items():
        assert f" {strategy} " in lines[table] and all(w in lines[table] for w in words)
    assert "data already identical: same" in text.stdout

    # The flags show in the plan: no delta with --full or --lock-target.
    for flag in ("--full", "--lock-target"):
        flagged = env.run("sync", "--dry-run", "--json", flag)
        assert flagged.exit_code == 0, flagged.stderr
        got = {d["table"]: d for d in json.loads(flagged.stdout)["data"]}
        assert got["big"]["strategy"] == "shadow"
        assert got["big"]["strategy_reason"].endswith(f"no delta: {flag}")
        assert got["small"]["strategy"] == "in-place"   # the flags leave small tables alone
    # `data --dry-run` says the same of the tables it can copy now (one decision).
    unchanged = ["small", "big", "trig", "parent", "child"]
    data = env.run("data", "--dry-run", "--json", *(a for t in unchanged
                                                    for a in ("--tables", t)))
    assert data.exit_code == 0, data.stderr
    for plan in json.loads(data.stdout)["tables"]:
        assert (plan["strategy"], plan["reason"]) == (
            items[plan["table"]]["strategy"], items[plan["table"]]["strategy_reason"])
    assert _target_state(env) == before          # no dry run wrote anything
    assert not (env.folder / "backups").exists()

    run = env.run("sync", "--yes", "--json")
    assert run.exit_code == 0, run.stderr
    report = {t["table"]: t for t in json.loads(run.stdout)["tables"]}
    for table in EXPECTED:
        assert report[table]["planned_strategy"] == items[table]["strategy"]
        assert report[table]["strategy_reason"] == items[table]["strategy_reason"]
    # What the run did is what the plan said, for the tables the sync created (judged
    # empty) and altered (compared by key ranges after the ALTER) too.
    for table in EXPECTED:
        assert report[table]["strategy"] == items[table]["strategy"], report[table]
    assert report["big"]["rows"] < ROWS // 4         # only its differing ranges moved
    assert report["same"]["strategy"] is None and report["same"]["action"] == "unchanged"
    assert env.run("verify").exit_code == 0


def test_a_table_the_data_step_would_refuse_is_named_in_the_plan(env: TestEnv) -> None:
    """A data table outside `structure_tables` whose columns differ: the copy refuses it
    (exit 6). The plan says so per table instead of guessing a strategy."""
    env.src("CREATE TABLE keep (id INT PRIMARY KEY)", "INSERT INTO keep VALUES (1)",
            "CREATE TABLE odd (id INT PRIMARY KEY, extra INT)", "INSERT INTO odd VALUES (1, 2)")
    env.dst("CREATE TABLE keep (id INT PRIMARY KEY)",
            "CREATE TABLE odd (id INT PRIMARY KEY)", "INSERT INTO odd VALUES (1)")
    env.write_config(structure_tables=["keep"])
    dry = env.run("sync", "--dry-run", "--json")
    assert dry.exit_code == 0, dry.stderr
    items = {d["table"]: d for d in json.loads(dry.stdout)["data"]}
    assert items["keep"]["strategy"] == "in-place"
    assert items["odd"]["strategy"] == "refused"
    assert "odd" in items["odd"]["strategy_reason"]
    assert "columns differ" in items["odd"]["strategy_reason"]
    run = env.run("sync", "--yes")
    assert run.exit_code == 6 and "columns differ" in run.stderr
