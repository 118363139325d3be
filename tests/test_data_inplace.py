"""Small tables replaced in place (one transaction, no DDL): exactness, readers, kills, guard.

Many small tables, an FK group whose parent has an `ON DELETE CASCADE` child outside the
copy, and a table with a trigger (which must take the shadow path).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time

import pytest

from tests.support import TestEnv, dumpload_command, table_digest, wait_for

SMALL = 12          # plain tables s00..s11
ROWS = 300

SCHEMA = [
    *(f"CREATE TABLE s{i:02d} (id INT PRIMARY KEY, v VARCHAR(40), n INT NULL, KEY ix_v (v))"
      for i in range(SMALL)),
    "CREATE TABLE par (id INT PRIMARY KEY, name VARCHAR(20) NOT NULL)",
    "CREATE TABLE kid (id INT PRIMARY KEY, par_id INT NOT NULL, "
    "CONSTRAINT fk_kid_par FOREIGN KEY (par_id) REFERENCES par (id))",
    # Not copied: a cascade from par would delete its rows if the DELETE fired it.
    "CREATE TABLE outside (id INT PRIMARY KEY, par_id INT, CONSTRAINT fk_out_par "
    "FOREIGN KEY (par_id) REFERENCES par (id) ON DELETE CASCADE)",
    "CREATE TABLE trg (id INT PRIMARY KEY, v INT NOT NULL)",
    "CREATE TRIGGER trg_bi BEFORE INSERT ON trg FOR EACH ROW SET NEW.v = NEW.v + 1000",
]
COPIED = [*(f"s{i:02d}" for i in range(SMALL)), "par", "kid", "trg"]


def _build(env: TestEnv) -> None:
    env.write_config(exclude_tables=["outside"])
    env.src(*SCHEMA)
    env.dst(*SCHEMA)
    env.src(*(f"INSERT INTO s{i:02d} SELECT seq, IF(seq % 9 = 0, NULL, CONCAT('new', seq)), "
              f"IF(seq % 4 = 0, NULL, seq) FROM seq_1_to_{ROWS}" for i in range(SMALL)),
            "INSERT INTO par SELECT seq, CONCAT('p', seq) FROM seq_1_to_50",
            "INSERT INTO kid SELECT seq, 1 + seq % 50 FROM seq_1_to_200",
            "SET @dl_t = 1", "INSERT INTO trg SELECT seq, seq FROM seq_1_to_30")
    env.dst(*(f"INSERT INTO s{i:02d} SELECT seq, 'old', 1 FROM seq_1_to_{ROWS // 3}"
              for i in range(SMALL)),
            "INSERT INTO par SELECT seq, 'old' FROM seq_1_to_20",
            "INSERT INTO kid SELECT seq, 1 FROM seq_1_to_20",
            "INSERT INTO outside SELECT seq, seq FROM seq_1_to_10",
            "INSERT INTO trg VALUES (1, 1)")


def _identical(env: TestEnv) -> None:
    for t in COPIED:
        assert table_digest(env.source, env.database, t) == table_digest(
            env.target, env.database, t), t


def test_small_tables_in_place_exact_and_readers_see_old_or_new(env: TestEnv) -> None:
    _build(env)
    env.write_config(threads=2, exclude_tables=["outside"])
    old = {t: table_digest(env.target, env.database, t) for t in COPIED}
    new = {t: table_digest(env.source, env.database, t) for t in COPIED}
    seen: list[dict[str, int]] = []
    stop = threading.Event()

    def reader() -> None:  # one snapshot per round: every table of it old or new
        conn = env.target.connect(env.database)
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT")
                    counts = {}
                    for t in COPIED:
                        cur.execute(f"SELECT COUNT(*) FROM {t}")
                        counts[t] = cur.fetchone()[0]
                    cur.execute("COMMIT")
                    seen.append(counts)
        finally:
            conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        dry = env.run("data", "--dry-run", "--json")
        result = env.run("data", "--yes", "--no-backup", "--json")
    finally:
        stop.set()
        thread.join()
    assert result.exit_code == 0, result.output
    strategies = {t["table"]: t["strategy"] for t in json.loads(dry.stdout)["tables"]}
    assert strategies["trg"] == "shadow"                     # triggers: never in place
    assert {strategies[t] for t in COPIED if t != "trg"} == {"in-place"}
    _identical(env)
    assert env.dst("SELECT COUNT(*) FROM outside") == [(10,)]  # no cascade fired
    assert env.dst("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                   f"'{env.database}' AND TABLE_NAME LIKE '\\_dl\\_%'") == [(0,)]
    assert seen
    for counts in seen:
        for t in COPIED:
            assert counts[t] in (old[t][0], new[t][0]), (t, counts[t])
        # par and kid are one FK group: one transaction, seen together
        assert (counts["par"] == old["par"][0]) == (counts["kid"] == old["kid"][0])


def test_in_place_refuses_rows_breaking_an_outside_fk(env: TestEnv) -> None:
    _build(env)
    env.dst("INSERT INTO outside VALUES (11, 20)")
    env.src("DELETE FROM kid WHERE par_id >= 20", "DELETE FROM par WHERE id >= 20")
    before = {t: table_digest(env.target, env.database, t) for t in ("par", "kid", "outside")}
    result = env.run("data", "--yes", "--no-backup", "--tables", "par", "--tables", "kid")
    assert result.exit_code == 6, result.output
    assert "fk_out_par" in result.output
    assert {t: table_digest(env.target, env.database, t)
            for t in ("par", "kid", "outside")} == before


def _waiting_delete(env: TestEnv) -> bool:
    return bool(env.target.sql(None, "SELECT ID FROM information_schema.PROCESSLIST WHERE "
                               f"DB = '{env.database}' AND INFO LIKE 'DELETE FROM%'"))


@pytest.mark.parametrize("write", [False, True], ids=["sigkill", "guard"])
def test_in_place_killed_or_written_keeps_old_rows(env: TestEnv, write: bool) -> None:
    """A row lock of the 'application' holds the transaction after its first DELETEs:
    SIGKILL there leaves every old row; a write committed there is kept (exit 6)."""
    _build(env)
    env.write_config(threads=1, lock_wait_timeout=30, exclude_tables=["outside"])
    old = {t: table_digest(env.target, env.database, t) for t in COPIED}
    # UPDATE_TIME carries the writing transaction's start second: a transaction opened in
    # the same second as the table's previous write is not told apart from it (a known gap
    # of the write guard), so the application's transaction starts a second later.
    time.sleep(1.1)
    app = env.target.connect(env.database)
    app.autocommit(False)
    with app.cursor() as cur:
        if write:
            cur.execute("UPDATE s05 SET v = 'app' WHERE id = 1")
        else:
            cur.execute("SELECT * FROM s05 WHERE id = 1 FOR UPDATE")
    proc = subprocess.Popen([dumpload_command(), "--config", str(env.config_path), "data",
                             "--yes", "--no-backup"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: _waiting_delete(env))
        if write:
            app.commit()
            out, _ = proc.communicate(timeout=120)
            assert proc.returncode == 6, out
            assert "changed during the copy" in out
        else:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
            app.rollback()
    finally:
        if proc.poll() is None:
            proc.kill()
        app.close()
    wait_for(lambda: not _waiting_delete(env))
    now = {t: table_digest(env.target, env.database, t) for t in COPIED}
    if write:
        assert env.dst("SELECT v FROM s05 WHERE id = 1") == [("app",)]
        # the batch holding s05 kept its old rows; tables of other batches may be new
        assert now["s00"] == old["s00"] and now["s11"] == old["s11"]
    else:
        assert now == old
    result = env.run("data", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    _identical(env)
