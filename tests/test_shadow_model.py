"""Shadow tables planned from the schema model, against a real server.

For every base table of every schema case folder's source.sql (the table shapes
`dumpload structure` is verified on), the data copy's shadow plan is carried out
in a second database under the table's own name (so same-schema foreign keys point at the
copies of their parents): CREATE, the deferred indexes (`shadow.build_indexes`), then the
foreign keys. Inspected again, every table must equal the original's model, and print the
same `SHOW CREATE TABLE` (the server keeps the index order it is given). A table the model
cannot represent is partitioned with the server's own clause, or refused: never copied
without the clause.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from dataclasses import replace

import pytest

from dumpload.config import load_config
from dumpload.data import shadow
from dumpload.db import Session, session
from dumpload.errors import DataError
from dumpload.schema.inspect import load_schema, load_tables
from tests.support import TestEnv, table_digest
from tests.test_schema_cases import CASE_NAMES, CASES, split_sql


@contextlib.contextmanager
def sessions(env: TestEnv, copy: str) -> Iterator[tuple[Session, Session]]:
    config = load_config(env.config_path)
    target = config.target
    with session(target, config.settings) as live, \
            session(replace(target, database=copy), config.settings) as other:
        yield live, other


def creates(env: TestEnv, database: str) -> dict[str, str]:
    names = [r[0] for r in env.target.sql(
        None, "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
        f"'{database}' AND TABLE_TYPE = 'BASE TABLE'")]
    return {n: env.target.sql(database, f"SHOW CREATE TABLE `{n.replace('`', '``')}`")[0][1]
            for n in names}


def comparable(create: str) -> str:
    """SHOW CREATE without `AUTO_INCREMENT=n` (a shadow's counter starts from its loaded
    rows) and with FK rules `NO ACTION` as omitted: the model holds them as one (RESTRICT),
    and the swap re-adds a table's FKs from its model (`swap.plan_swap`), not the shadow."""
    create = re.sub(r" ON (DELETE|UPDATE) NO ACTION", "", create)
    return re.sub(r" AUTO_INCREMENT=\d+", "", create)


@pytest.mark.parametrize("case", CASE_NAMES)
def test_shadow_rebuilt_from_the_model_equals_the_table(env: TestEnv, case: str) -> None:
    env.dst(*split_sql((CASES / case / "source.sql").read_text()))
    copy = f"{env.database}_sh"
    env.target.sql(None, f"CREATE DATABASE `{copy}`")
    try:
        with sessions(env, copy) as (live, other):
            model = load_tables(live, list(creates(env, env.database)))
            plans = {}
            for name, table in model.tables.items():
                if table.unsupported and table.partition_text is None:
                    with pytest.raises(DataError, match="cannot be created exactly"):
                        shadow.shadow_plan(table, model.flavor)
                    continue
                plans[name] = shadow.shadow_plan(table, model.flavor, name=name)
            other.execute("SET SESSION foreign_key_checks = 0")
            for plan in plans.values():
                shadow.create_shadow(other, plan)
            for plan in plans.values():
                shadow.build_indexes(other, plan)
            for plan in plans.values():
                for fk in plan.fk_clauses:
                    other.execute(f"ALTER TABLE `{plan.shadow.replace('`', '``')}` ADD {fk}")
            rebuilt = load_schema(other).tables
        assert set(rebuilt) == set(plans)
        for name in plans:
            assert rebuilt[name] == model.tables[name], name
        shown, again = creates(env, env.database), creates(env, copy)
        for name in plans:
            assert comparable(again[name]) == comparable(shown[name]), name
    finally:
        env.target.sql(None, f"DROP DATABASE IF EXISTS `{copy}`")


def test_plan_shadows_reads_only_the_named_tables_in_one_pass(env: TestEnv) -> None:
    env.dst("CREATE TABLE `a*b` (id INT PRIMARY KEY, v INT, KEY iv (v))",
            "CREATE TABLE `axb` (id INT PRIMARY KEY)",
            "CREATE TABLE plain (id INT PRIMARY KEY, w INT, UNIQUE KEY uw (w))",
            "CREATE VIEW vw AS SELECT 1 AS one")
    config = load_config(env.config_path)
    with session(config.target, config.settings) as live:
        plans = shadow.plan_shadows(live, ["a*b", "plain", "vw"])
        assert shadow.plan_shadows(live, []) == {}
    assert set(plans) == {"a*b", "plain"}   # a glob character is a name; a view has no shadow
    assert plans["a*b"].shadow == "_dl_shadow_a*b"
    assert plans["a*b"].index_clauses == ["KEY `iv` (`v`)"]
    assert plans["plain"].index_clauses == ["UNIQUE KEY `uw` (`w`)"]


SHAPES = (
    "CREATE TABLE docs (id INT NOT NULL PRIMARY KEY, title VARCHAR(80), body TEXT, "
    "KEY ix_title (title), FULLTEXT KEY ft_body (body), FULLTEXT KEY ft_both (title, body)) "
    "ENGINE=InnoDB",
    "CREATE TABLE tickets (code VARCHAR(12) NOT NULL, n INT NOT NULL AUTO_INCREMENT, "
    "v INT, PRIMARY KEY (code), KEY ix_v (v), UNIQUE KEY ux_n (n, v)) ENGINE=InnoDB",
    "CREATE TABLE ranged (id INT NOT NULL, day DATE NOT NULL, note VARCHAR(20), "
    "PRIMARY KEY (id, day), KEY ix_note (note)) PARTITION BY RANGE (YEAR(day)) "
    "(PARTITION p1 VALUES LESS THAN (2024), PARTITION p2 VALUES LESS THAN MAXVALUE)",
    "CREATE TABLE keyed (a VARCHAR(10) NOT NULL, b INT NOT NULL, c INT, UNIQUE KEY uk (a, b), "
    "KEY ic (c)) PARTITION BY KEY () PARTITIONS 3",
    "CREATE TABLE gen (id INT NOT NULL PRIMARY KEY, price DECIMAL(8,2), "
    "gross DECIMAL(9,2) AS (price * 2) STORED, half DECIMAL(12,4) AS (price / 2) VIRTUAL, "
    "KEY ix_gross (gross), KEY ix_half (half), CONSTRAINT chk_z CHECK (price >= 0), "
    "CONSTRAINT chk_a CHECK (price < 100000))",
    "CREATE TABLE parent (id INT NOT NULL PRIMARY KEY, name VARCHAR(10))",
    "CREATE TABLE child (id INT NOT NULL PRIMARY KEY, pid INT, v INT, "
    "CONSTRAINT fk_child FOREIGN KEY (pid) REFERENCES parent (id) ON DELETE CASCADE)",
    "CREATE TRIGGER child_bi BEFORE INSERT ON child FOR EACH ROW SET NEW.v = NEW.v + 1",
)
SHAPE_ROWS = (
    "INSERT INTO docs SELECT seq, CONCAT('t', seq), REPEAT(CONCAT('w', seq % 17, ' '), 5) "
    "FROM seq_1_to_3000",
    "INSERT INTO tickets (code, v) SELECT CONCAT('c', seq), seq % 13 FROM seq_1_to_3000",
    "INSERT INTO ranged SELECT seq, '2022-06-01' + INTERVAL (seq % 900) DAY, "
    "IF(seq % 3, CONCAT('n', seq), NULL) FROM seq_1_to_3000",
    "INSERT INTO keyed SELECT CONCAT('k', seq % 41), seq, seq % 7 FROM seq_1_to_3000",
    "INSERT INTO gen (id, price) SELECT seq, seq / 7 FROM seq_1_to_3000",
    "INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_300",
    "INSERT INTO child (id, pid, v) SELECT seq, 1 + seq % 300, seq FROM seq_1_to_3000",
)
COPIED = ("docs", "tickets", "ranged", "keyed", "gen", "parent", "child")


def test_data_copy_through_model_shadows_is_exact_and_keeps_the_definitions(
        env: TestEnv) -> None:
    for run in (env.src, env.dst):
        run(*SHAPES)
    env.src(*SHAPE_ROWS)
    env.dst("INSERT INTO parent VALUES (1, 'old'), (999, 'gone')",
            "INSERT INTO child (id, pid, v) VALUES (5, 999, 0)",
            "INSERT INTO tickets (code, n, v) VALUES ('old', 7000, 1)")
    before = creates(env, env.database)
    env.write_config(in_place_max_mb=0, threads=2)   # every table takes the shadow path
    result = env.run("data", "--yes", "--no-backup", "--full")
    assert result.exit_code == 0, result.output
    for table in COPIED:
        assert table_digest(env.source, env.database, table) == table_digest(
            env.target, env.database, table), table
    after = creates(env, env.database)
    assert set(after) == set(COPIED)   # no shadow left behind
    for table in COPIED:
        assert comparable(after[table]) == comparable(before[table]), table
    assert env.dst("SELECT TRIGGER_NAME FROM information_schema.TRIGGERS WHERE "
                   "TRIGGER_SCHEMA = DATABASE()") == [("child_bi",)]
    env.dst("INSERT INTO child (id, pid, v) VALUES (9000, 2, 1)")
    assert env.dst("SELECT v FROM child WHERE id = 9000") == [(2,)]   # the trigger fires
    env.dst("DELETE FROM parent WHERE id = 2")
    assert env.dst("SELECT COUNT(*) FROM child WHERE pid = 2") == [(0,)]   # the FK cascades


def test_a_plan_made_before_a_confirmation_gets_the_table_as_it_is_at_the_copy(
        env: TestEnv) -> None:
    from dumpload.data import copy_tables, plan_copy
    for run in (env.src, env.dst):
        run("CREATE TABLE t (id INT NOT NULL PRIMARY KEY, v INT, KEY iv (v))")
    env.src("INSERT INTO t SELECT seq, seq % 5 FROM seq_1_to_500")
    env.write_config(in_place_max_mb=0)
    config = load_config(env.config_path)
    plans = plan_copy(config, config.source, config.target, ["t"], full=True)
    env.dst("ALTER TABLE t ADD KEY iv2 (v, id)")   # while the plan waits for a "yes"
    copy_tables(config, config.source, config.target, ["t"], plans=plans, full=True,
                metrics=False)
    assert "KEY `iv2` (`v`,`id`)" in env.dst("SHOW CREATE TABLE t")[0][1]
    assert table_digest(env.source, env.database, "t") == table_digest(
        env.target, env.database, "t")


def test_a_partition_clause_the_model_cannot_render_is_copied_as_the_server_shows_it(
        env: TestEnv, tmp_path: object) -> None:
    for run, side in ((env.src, "source"), (env.dst, "target")):
        folder = tmp_path / side   # type: ignore[operator]
        folder.mkdir()
        run(f"CREATE TABLE dd (x INT NOT NULL, v INT, KEY iv (v)) PARTITION BY HASH (x) "
            f"(PARTITION a DATA DIRECTORY = '{folder}', PARTITION b)")
    env.src("INSERT INTO dd SELECT seq, seq % 9 FROM seq_1_to_2000")
    before = creates(env, env.database)["dd"]
    env.write_config(in_place_max_mb=0)
    result = env.run("data", "--yes", "--no-backup", "--full")
    assert result.exit_code == 0, result.output
    assert comparable(creates(env, env.database)["dd"]) == comparable(before)
    assert table_digest(env.source, env.database, "dd") == table_digest(
        env.target, env.database, "dd")
