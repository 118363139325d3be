"""Preflight against real servers: a plan never half-applies, and ALTERs say what they cost.

- A plan whose third statement would fail on the target's rows is refused before its
  first statement runs; every table's SHOW CREATE and every row are as before, and the
  scratch schema of the rehearsal is gone.
- A plan the rows allow but the server would refuse is caught by the rehearsal.
- Each ALTER shows the algorithm the server will use; large tables get an estimate, are
  altered with ALGORITHM=INPLACE, LOCK=NONE where the server allows it, and statements that
  block writes are listed as such.
Pure query building is tested too (no server).
"""

from __future__ import annotations

import json

from dumpload.schema.checks import data_checks, fill_value
from dumpload.schema.model import Column, Index, IndexPart, Schema, Table
from tests.support import TestEnv
from tests.test_schema_cases import show_creates, snapshot


def scratch_schemas(env: TestEnv) -> list:
    return env.target.sql(None, "SHOW DATABASES LIKE '\\_dl\\_rehearsal%'")


def test_plan_failing_at_third_statement_is_refused_before_the_first(env: TestEnv) -> None:
    env.src("CREATE TABLE a (id INT PRIMARY KEY, x INT, y INT)",
            "CREATE TABLE b (id INT PRIMARY KEY, note VARCHAR(10))",
            "CREATE TABLE c (id INT PRIMARY KEY, code VARCHAR(5), UNIQUE KEY u_code (code))")
    env.dst("CREATE TABLE a (id INT PRIMARY KEY, x INT)",
            "CREATE TABLE b (id INT PRIMARY KEY)",
            "CREATE TABLE c (id INT PRIMARY KEY, code VARCHAR(5))",
            "INSERT INTO a VALUES (1, 1)", "INSERT INTO b VALUES (1)",
            "INSERT INTO c VALUES (1, 'x'), (2, 'x'), (3, NULL)")
    doc = json.loads(env.run("analyze", "--json").stdout)
    assert [s.split("`")[1] for s in doc["statements"]] == ["a", "b", "c"]
    env.target.sql(None, "CREATE DATABASE IF NOT EXISTS `_dl_rehearsal_plan_1000_abcdef`")  # killed
    creates = show_creates(env.target, env.database)
    types = {(t, c): None for t, c in [("a", "id"), ("a", "x"), ("b", "id"), ("c", "id"),
                                       ("c", "code")]}
    rows = snapshot(env.target, env.database, types)
    result = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
    assert result.exit_code == 5, result.output
    assert "c.code: 2 row(s) with duplicate rows under the new unique key u_code" in \
        result.output
    assert "[1/" not in result.output              # not one statement was run
    assert show_creates(env.target, env.database) == creates
    assert snapshot(env.target, env.database, types) == rows
    assert not scratch_schemas(env)


def test_rehearsal_failure_refuses_with_the_servers_error(env: TestEnv) -> None:
    # A new table whose FK points at a column the target lacks and the plan never adds
    # (the parent is outside the selection): only the server can tell.
    env.src("CREATE TABLE parent (id INT PRIMARY KEY, k INT, UNIQUE KEY (k))",
            "CREATE TABLE child (id INT PRIMARY KEY, pk INT, "
            "CONSTRAINT fk_k FOREIGN KEY (pk) REFERENCES parent (k))")
    env.dst("CREATE TABLE parent (id INT PRIMARY KEY)")
    env.write_config(structure_tables=["child"])
    result = env.run("structure", "--yes", "--no-backup")
    assert result.exit_code == 5, result.output
    assert "rehearsal failed" in result.output
    assert env.dst("SHOW TABLES LIKE 'child'") == []
    assert not scratch_schemas(env)


def test_alters_say_algorithm_and_estimate(env: TestEnv) -> None:
    env.write_config(large_table_mb=1)
    env.src("CREATE TABLE big (id INT PRIMARY KEY, a INT, note VARCHAR(100), b INT, "
            "KEY ka (a))",
            "CREATE TABLE wide (id INT PRIMARY KEY, v BIGINT)",
            "CREATE TABLE tiny (id INT PRIMARY KEY, z INT)")
    env.dst("CREATE TABLE big (id INT PRIMARY KEY, a INT, note VARCHAR(100))",
            "CREATE TABLE wide (id INT PRIMARY KEY, v INT)",
            "CREATE TABLE tiny (id INT PRIMARY KEY)",
            "INSERT INTO big SELECT seq, seq MOD 100, REPEAT('n', 60) FROM seq_1_to_60000",
            "INSERT INTO wide SELECT seq, seq FROM seq_1_to_60000",
            "ANALYZE TABLE big", "ANALYZE TABLE wide")
    dry = env.run("structure", "--dry-run")
    assert dry.exit_code == 0, dry.output
    out = dry.output
    # add column + add index: online on a large table, said and enforced
    assert "ADD KEY `ka` (`a`), ALGORITHM=INPLACE, LOCK=NONE;" in out
    assert "-- INPLACE, LOCK=NONE; big:" in out and "estimated" in out
    # a type change is a copy: the table is locked, and the plan says so
    assert "-- COPY, LOCK=SHARED; wide:" in out and "writes to wide blocked" in out
    assert "LOCKS wide: ALGORITHM=COPY blocks writes" in out
    assert "-- INSTANT, LOCK=NONE\n" in out     # tiny: small, no estimate
    doc = json.loads(env.run("sync", "--dry-run", "--json").stdout)
    costs = {c["table"]: c for c in doc["structure"]["preflight"]["costs"]}
    assert costs["wide"]["locks_table"] and costs["wide"]["estimated_seconds"] is not None
    assert costs["big"]["algorithm"] == "INPLACE" and not costs["big"]["locks_table"]
    # no terminal: the locking statements cannot be confirmed without --yes
    assert env.run("structure").exit_code == 2
    applied = env.run("structure", "--yes", "--no-backup")
    assert applied.exit_code == 0, applied.output
    assert env.run("analyze").exit_code == 0
    assert not scratch_schemas(env)


def test_parent_column_dropped_under_an_outside_child_fk(env: TestEnv) -> None:
    # The child is outside the selection; its FK references a column the source drops.
    env.src("CREATE TABLE p (code VARCHAR(5) PRIMARY KEY)")
    env.dst("CREATE TABLE p (id INT NOT NULL, code VARCHAR(5) NOT NULL, PRIMARY KEY (id), "
            "UNIQUE KEY (code))",
            "CREATE TABLE outside (id INT PRIMARY KEY, p_id INT, "
            "CONSTRAINT fk_out FOREIGN KEY (p_id) REFERENCES p (id))",
            "INSERT INTO p VALUES (1, 'a')", "INSERT INTO outside VALUES (1, 1)")
    env.write_config(structure_tables=["p"])
    refused = env.run("structure", "--yes", "--no-backup")
    assert refused.exit_code == 5 and "fk_out" in refused.output, refused.output
    result = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
    assert result.exit_code == 0, result.output
    assert "FOREIGN KEY" not in env.dst("SHOW CREATE TABLE outside")[0][1]
    assert env.dst("SELECT code FROM p") == [("a",)]


# --- pure ---------------------------------------------------------------------------------

def test_checks_built_from_the_models() -> None:
    old = Table("t", (Column("id", "int", nullable=False), Column("a", "varchar(20)"),
                      Column("n", "int"), Column("e", "enum('x','y','z')")),
                (Index("PRIMARY", "PRIMARY", (IndexPart("id"),)),))
    new = Table("t", (Column("id", "int", nullable=False),
                      Column("a", "varchar(5)", nullable=False),
                      Column("n", "tinyint unsigned"), Column("e", "enum('x','z')")),
                (Index("PRIMARY", "PRIMARY", (IndexPart("id"),)),
                 Index("ua", "UNIQUE", (IndexPart("a"),))))
    checks = data_checks(Schema("db", tables={"t": new}), Schema("db", tables={"t": old}))
    kinds = {(c.check, c.column): c for c in checks}
    assert set(kinds) == {("nulls", "a"), ("too_long", "a"), ("out_of_range", "n"),
                          ("removed_value", "e"), ("duplicates", "a")}
    assert kinds[("nulls", "a")].fix_sql == "UPDATE `t` SET `a` = '' WHERE `a` IS NULL"
    assert kinds[("out_of_range", "n")].fix_sql.startswith(
        "UPDATE `t` SET `n` = LEAST(GREATEST(`n`, 0), 255)")
    assert kinds[("removed_value", "e")].fix_sql == \
        "UPDATE `t` SET `e` = NULL WHERE `e` IN ('y')"
    assert kinds[("duplicates", "a")].fix_sql is None
    assert fill_value(Column("d", "datetime(3)", nullable=False)) == "'0000-00-00 00:00:00'"
    assert fill_value(Column("j", "json", nullable=False)) is None
    assert fill_value(Column("s", "varchar(3)", nullable=False, default="'x'")) == "'x'"


def test_conversions_go_before_their_tables_alter_and_need_allow_unsafe() -> None:
    from dumpload.schema.plan import Plan, Step
    from dumpload.schema.preflight import Preflight, Verdict, with_conversions
    plan = Plan("s", "t", steps=(Step("drop_constraint", "t", "ALTER TABLE `t` DROP FOREIGN KEY f"),
                                 Step("alter_table", "t", "ALTER TABLE `t` MODIFY a INT NOT NULL"),
                                 Step("alter_table", "u", "ALTER TABLE `u` FORCE")))
    nulls = Verdict("t", "a", "nulls", "NULL values", 3, "UPDATE `t` SET `a` = 0 WHERE `a` IS NULL")
    dups = Verdict("u", "k", "duplicates", "duplicate rows", 2)
    fine = Verdict("u", "x", "too_long", "values too long", 0, "UPDATE ...")
    converted = with_conversions(plan, [nulls, dups, fine])
    assert [s.sql.split(" ")[0] for s in converted.steps] == ["ALTER", "UPDATE", "ALTER", "ALTER"]
    assert [(c.kind, c.safe) for c in converted.changes] == [("convert_rows", False)]
    report = Preflight((nulls, dups, fine))
    assert report.refusals(allow_unsafe=True) == [
        "u.k: 2 row(s) with duplicate rows (never fixed by deleting or guessing rows)"]
    assert len(report.refusals(allow_unsafe=False)) == 2


def test_costs_and_online_alters() -> None:
    from dumpload.schema.plan import Plan, Step
    from dumpload.schema.preflight import costs_for, with_online_alters
    plan = Plan("s", "t", steps=(Step("alter_table", "big", "ALTER TABLE `big` ADD KEY k (a)"),
                                 Step("alter_table", "wide", "ALTER TABLE `wide` MODIFY v BIGINT"),
                                 Step("alter_table", "tiny", "ALTER TABLE `tiny` ADD z INT")))
    probes = {plan.steps[0].sql: ("INPLACE", "NONE"), plan.steps[1].sql: ("COPY", "SHARED"),
              plan.steps[2].sql: ("INSTANT", "NONE")}
    stats = {"big": (300 << 20, 10 ** 6), "wide": (200 << 20, 10 ** 6), "tiny": (1 << 10, 3)}
    costs = costs_for(plan, probes, stats, {"COPY": 10 << 20, "INPLACE": 20 << 20}, 100 << 20)
    by = {c.table: c for c in costs}
    assert by["big"].seconds == 15 and not by["big"].locks_table
    assert by["wide"].seconds == 20 and by["wide"].locks_table
    assert not by["tiny"].large and by["tiny"].seconds is None
    assert "estimated 20 s; writes to wide blocked" in by["wide"].describe()
    online, costs = with_online_alters(plan, costs)
    assert online.steps[0].sql.endswith(", ALGORITHM=INPLACE, LOCK=NONE")
    assert online.steps[1].sql == plan.steps[1].sql
    assert costs[0].sql == online.steps[0].sql
