"""Table details a data copy must keep, on both paths (in place, and shadow + swap).

- Generated columns whose expression is rounded to the column's type: the server computes
  STORED and VIRTUAL values on the target (they are never loaded); a rounded value raises
  a note per row, which must not fail the load.
- The AUTO_INCREMENT counter never moves back: ids the application handed out before
  deleting rows are not handed out again after the swap.
"""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from tests.support import TestEnv, table_digest

DDL = ("CREATE TABLE g (id INT PRIMARY KEY, price DECIMAL(9,2) NOT NULL, "
       "gross DECIMAL(9,2) AS (price * 1.2) STORED, "
       "net DECIMAL(9,2) AS (price / 1.3) VIRTUAL, KEY ix_gross (gross))")
FILL = "INSERT INTO g (id, price) SELECT seq, seq * 1.37 FROM seq_1_to_3000"


@pytest.mark.parametrize("mode", ["in-place", "shadow"])
def test_rounded_generated_columns_copy_exactly(env: TestEnv, mode: str) -> None:
    env.src(DDL, FILL)
    env.dst(DDL, "INSERT INTO g (id, price) VALUES (1, 5)")
    extra: tuple[str, ...] = ()
    if mode == "shadow":
        env.write_config(in_place_max_mb=0)
        extra = ("--full",)
    result = env.run("data", "--yes", "--no-backup", "--json", *extra)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{"):])
    table = next(t for t in doc["tables"] if t["table"] == "g")
    assert table["strategy"] == mode
    assert table_digest(env.source, env.database, "g") == table_digest(
        env.target, env.database, "g")
    assert env.dst("SELECT gross, net FROM g WHERE id = 7") == [
        (Decimal("11.51"), Decimal("7.38"))]


def test_shadow_swap_keeps_the_auto_increment_counter(env: TestEnv) -> None:
    ddl = "CREATE TABLE a (id INT AUTO_INCREMENT PRIMARY KEY, v INT NOT NULL)"
    env.src(ddl, "INSERT INTO a (v) SELECT seq FROM seq_1_to_100")
    env.dst(ddl, "INSERT INTO a (v) SELECT seq FROM seq_1_to_5000",
            "DELETE FROM a WHERE id > 10")
    counter = ("SELECT AUTO_INCREMENT FROM information_schema.TABLES "
               "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'a'")
    before = env.dst(counter)[0][0]
    assert before > 5000
    env.write_config(in_place_max_mb=0)
    result = env.run("data", "--yes", "--no-backup", "--full")
    assert result.exit_code == 0, result.output
    assert table_digest(env.source, env.database, "a") == table_digest(
        env.target, env.database, "a")
    assert env.dst(counter)[0][0] == before
    env.dst("INSERT INTO a (v) VALUES (1)")
    assert env.dst("SELECT MAX(id) FROM a")[0][0] == before
