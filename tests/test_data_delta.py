"""Delta copy of a large table: only differing key ranges replaced, in one transaction.

Appends past the target's highest key, deletes, updates and NULL changes; a concurrent
reader's SUM() is always the old or the new value; uniform drift falls back to the full
copy; `--full` forces it.
"""

from __future__ import annotations

import json
import threading

from tests.support import TestEnv, table_digest

ROWS = 60_000
DDL = ("CREATE TABLE d (id INT PRIMARY KEY, v VARCHAR(40) NOT NULL, n INT NULL, "
       "note TEXT NULL, KEY ix_v (v))")
FILL = (f"INSERT INTO d SELECT seq, MD5(seq), IF(seq % 5 = 0, NULL, seq), "
        f"REPEAT('x', seq % 30) FROM seq_1_to_{ROWS}")
SUM = "SELECT SUM(id) + SUM(COALESCE(n, 7)) + SUM(CRC32(v)) + COUNT(note) FROM d"


def _run(env: TestEnv, *extra: str) -> dict:
    result = env.run("data", "--yes", "--no-backup", "--json", *extra)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout[result.stdout.index("{"):])
    assert table_digest(env.source, env.database, "d") == table_digest(
        env.target, env.database, "d")
    return next(t for t in doc["tables"] if t["table"] == "d")


def test_delta_copy_replaces_only_what_differs(env: TestEnv) -> None:
    env.src(DDL, FILL, "ANALYZE TABLE d")
    env.dst(DDL, FILL, "ANALYZE TABLE d")
    env.write_config(in_place_max_mb=0.1, threads=2)
    env.src("UPDATE d SET v = 'changed' WHERE id BETWEEN 20000 AND 20300",
            "UPDATE d SET n = NULL WHERE id BETWEEN 20301 AND 20310",   # value → NULL
            "UPDATE d SET n = 1 WHERE id = 20315",                       # NULL → value
            "UPDATE d SET note = NULL WHERE id = 20320",
            "DELETE FROM d WHERE id BETWEEN 30000 AND 30050",
            f"INSERT INTO d SELECT seq, 'appended', seq, NULL FROM seq_{ROWS + 1}_to_{ROWS + 700}")
    old, new = env.dst(SUM)[0][0], env.src(SUM)[0][0]
    assert old != new
    dry = env.run("data", "--dry-run", "--json")
    assert json.loads(dry.stdout)["tables"][0]["strategy"] == "delta"
    seen: set = set()
    stop = threading.Event()

    def reader() -> None:
        conn = env.target.connect(env.database)
        try:
            with conn.cursor() as cur:
                while not stop.is_set():
                    cur.execute(SUM)
                    seen.add(cur.fetchone()[0])
        finally:
            conn.close()

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        report = _run(env)
    finally:
        stop.set()
        thread.join()
    assert report["strategy"] == "delta"
    assert 0 < report["chunks"] <= 4          # ranges replaced: few, not the table
    assert report["rows"] < ROWS // 4
    assert seen <= {old, new} and old in seen
    assert env.dst(SUM)[0][0] == new
    # Nothing differs any more: nothing replaced.
    again = _run(env)
    assert again["strategy"] == "delta" and again["chunks"] == 0 and again["rows"] == 0
    # Uniform drift: every range differs → the full shadow copy.
    env.src("UPDATE d SET n = COALESCE(n, 0) + 1")
    assert _run(env)["strategy"] == "shadow (delta too big)"
    env.src("UPDATE d SET v = 'full' WHERE id = 5")
    assert _run(env, "--full")["strategy"] == "shadow"
