"""`export` / `import` round trips against real servers, and damaged exports refused."""

from __future__ import annotations

import json

from tests.support import TestEnv, table_digest
from tests.test_data_copy import CORPUS, NO_PK, NO_PK_ROWS, ROWS

NO_PK_TABLE = "odd name `quoted` and select"


def test_export_import_round_trip(env: TestEnv) -> None:
    env.src(CORPUS, NO_PK, *ROWS, NO_PK_ROWS,
            "CREATE TABLE big (id INT PRIMARY KEY, v VARCHAR(40), KEY ix_v (v))",
            "INSERT INTO big SELECT seq, MD5(seq) FROM seq_1_to_60000", "ANALYZE TABLE big")
    env.dst(CORPUS, "INSERT INTO corpus (id, s) VALUES (77, 'old')")  # others are missing
    out = env.folder / "export"
    result = env.run("export", "--env", "development", "--out", str(out), "--json")
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifest.json").read_text())
    by_name = {t["name"]: t for t in manifest["tables"]}
    assert set(by_name) == {"corpus", NO_PK_TABLE, "big"}
    assert by_name["big"]["rows"] == 60000 and len(by_name["big"]["frames"]) > 1
    assert by_name[NO_PK_TABLE]["rows"] == 5
    assert (out / "schema.sql").read_text().count("CREATE TABLE") == 3
    assert all((out / t["file"]).exists() for t in manifest["tables"])
    # The same folder cannot be exported into twice.
    again = env.run("export", "--env", "development", "--out", str(out))
    assert again.exit_code == 6

    dry = env.run("import", str(out), "--env", "production", "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert env.dst("SELECT COUNT(*) FROM corpus") == [(1,)]
    result = env.run("import", str(out), "--env", "production", "--yes", "--no-backup")
    assert result.exit_code == 0, result.output
    for table in ("corpus", NO_PK_TABLE, "big"):
        assert table_digest(env.source, env.database, table) == table_digest(
            env.target, env.database, table), table


def test_import_refuses_a_damaged_file(env: TestEnv) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    env.dst("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (9)")
    out = env.folder / "export"
    assert env.run("export", "--env", "development", "--out", str(out)).exit_code == 0
    data = out / "t.tsv.zst"
    raw = bytearray(data.read_bytes())
    raw[-5] ^= 0xFF
    data.write_bytes(bytes(raw))
    result = env.run("import", str(out), "--env", "production", "--yes", "--no-backup")
    assert result.exit_code == 6
    assert "sha256" in result.output
    assert env.dst("SELECT * FROM t") == [(9,)]
