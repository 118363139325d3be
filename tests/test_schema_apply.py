"""apply_plan on a real server: the rebuild fallback and parents changed under children
that are outside the table selection."""

from __future__ import annotations

import dataclasses

from dumpload.config import load_config
from dumpload.db import session
from dumpload.schema import apply_plan, plan_structure
from tests.support import TestEnv


def sessions(env: TestEnv):  # noqa: ANN201
    config = load_config(env.config_path)
    return (session(config.env("development"), config.settings),
            session(config.env("production"), config.settings))


def child_fk(env: TestEnv) -> list[tuple]:
    return env.dst("SELECT CONSTRAINT_NAME, REFERENCED_TABLE_NAME FROM "
                   "information_schema.REFERENTIAL_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = "
                   f"'{env.database}'")


def test_parent_column_change_with_child_outside_selection(env: TestEnv) -> None:
    env.src("CREATE TABLE p (id INT NOT NULL COMMENT 'key', PRIMARY KEY (id))")
    env.dst("CREATE TABLE p (id INT PRIMARY KEY)",
            "CREATE TABLE c (id INT PRIMARY KEY, p_id INT, "
            "CONSTRAINT fk_c FOREIGN KEY (p_id) REFERENCES p (id))",
            "INSERT INTO p VALUES (1)", "INSERT INTO c VALUES (1, 1)")
    result = env.run("structure", "--yes", "--no-backup", "--tables", "p")
    assert result.exit_code == 0, result.output
    assert child_fk(env) == [("fk_c", "p")]
    assert env.run("analyze", "--tables", "p").exit_code == 0


def test_parent_type_change_breaks_outside_child_fk_only_when_allowed(env: TestEnv) -> None:
    env.src("CREATE TABLE p (id BIGINT PRIMARY KEY)")
    env.dst("CREATE TABLE p (id INT PRIMARY KEY)",
            "CREATE TABLE c (id INT PRIMARY KEY, p_id INT, "
            "CONSTRAINT fk_c FOREIGN KEY (p_id) REFERENCES p (id))")
    refused = env.run("structure", "--yes", "--no-backup", "--tables", "p")
    assert refused.exit_code == 5 and "fk_c" in refused.output
    assert child_fk(env) == [("fk_c", "p")]
    done = env.run("structure", "--yes", "--no-backup", "--tables", "p", "--allow-unsafe")
    assert done.exit_code == 0, done.output
    assert child_fk(env) == []


def test_refused_alter_falls_back_to_rebuild(env: TestEnv) -> None:
    env.src("CREATE TABLE p (id INT PRIMARY KEY, name VARCHAR(20), extra INT DEFAULT 7)",
            "CREATE TRIGGER p_bi BEFORE INSERT ON p FOR EACH ROW SET NEW.name = UPPER(NEW.name)")
    env.dst("CREATE TABLE p (id INT PRIMARY KEY, name VARCHAR(10))",
            "CREATE TRIGGER p_bi BEFORE INSERT ON p FOR EACH ROW SET NEW.name = UPPER(NEW.name)",
            "CREATE TABLE c (id INT PRIMARY KEY, p_id INT, "
            "CONSTRAINT fk_c FOREIGN KEY (p_id) REFERENCES p (id))",
            "INSERT INTO p VALUES (1, 'A'), (2, 'B')", "INSERT INTO c VALUES (1, 2)")
    src_cm, dst_cm = sessions(env)
    with src_cm as src, dst_cm as dst:
        plan = plan_structure(src, dst, ["p"])
        steps = list(plan.steps)
        i = next(i for i, s in enumerate(steps) if s.phase == "alter_table")
        assert steps[i].fallback, "every ALTER carries a rebuild fallback"
        # A statement the server refuses with 1833 (column used by a foreign key).
        steps[i] = dataclasses.replace(steps[i], sql="ALTER TABLE `p` MODIFY `id` BIGINT")
        ran: list[str] = []
        apply_plan(dst, dataclasses.replace(plan, steps=tuple(steps)), on_statement=ran.append)
        assert any(s.startswith("RENAME TABLE `p` TO `_dl_old_p`") for s in ran)
        again = plan_structure(src, dst, ["p"])
        assert again.is_empty, again.differences
    assert env.dst("SELECT id, name, extra FROM p ORDER BY id") == [(1, "A", 7), (2, "B", 7)]
    assert child_fk(env) == [("fk_c", "p")]
    assert env.dst("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                   f"TRIGGER_SCHEMA = '{env.database}'") == [("p_bi",)]
    assert sorted(r[0] for r in env.dst("SHOW TABLES")) == ["c", "p"]
