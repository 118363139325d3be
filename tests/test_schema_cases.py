"""Round trip of every folder in tests/schema_cases against real servers, both directions.

For each case: load source.sql on the source, target.sql (+ rows.sql) on the target; run
`analyze --json`; unsafe plans must be refused without --allow-unsafe (exit 5, nothing
written); `structure --yes --allow-unsafe` must then converge (`analyze` exit 0) and leave
the rows of kept, unchanged columns byte-identical. The reverse direction (target.sql as
the source) must converge too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from dumpload.config import load_config
from dumpload.db import session
from dumpload.schema.inspect import read_catalog
from tests.case_records import record
from tests.support import Server, TestEnv

CASES = Path(__file__).parent / "schema_cases"
CASE_NAMES = sorted(p.name for p in CASES.iterdir() if (p / "source.sql").exists())


def split_sql(text: str) -> list[str]:
    """Statements of a case file; `DELIMITER x` lines change the terminator (triggers)."""
    out, buf, delim = [], [], ";"
    for line in text.splitlines():
        if line.strip().upper().startswith("DELIMITER "):
            delim = line.strip().split()[1]
            continue
        buf.append(line)
        if line.rstrip().endswith(delim):
            stmt = "\n".join(buf).rstrip()[: -len(delim)].strip()
            if stmt:
                out.append(stmt)
            buf = []
    rest = "\n".join(buf).strip()
    if rest:
        out.append(rest)
    return out


def column_types(server: Server, db: str) -> dict[tuple[str, str], tuple]:
    rows = server.sql(None, "SELECT c.TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, COLLATION_NAME, "
                      "EXTRA, IS_NULLABLE FROM information_schema.COLUMNS c "
                      "JOIN information_schema.TABLES t "
                      "USING (TABLE_SCHEMA, TABLE_NAME) WHERE c.TABLE_SCHEMA = "
                      f"'{db}' AND t.TABLE_TYPE = 'BASE TABLE'")
    return {(r[0], r[1]): (r[2], r[3], r[5]) for r in rows if "GENERATED" not in (r[4] or "")
            or "DEFAULT_GENERATED" in (r[4] or "")}


def snapshot(server: Server, db: str, columns: dict[tuple[str, str], tuple]) -> dict:
    """Table → rows as {column: hex} over the given (non-generated) columns."""
    by_table: dict[str, list[str]] = {}
    for table, col in columns:
        by_table.setdefault(table, []).append(col)
    out = {}
    for table, cols in by_table.items():
        q = ", ".join("HEX(`{}`)".format(c.replace("`", "``")) for c in cols)
        rows = server.sql(db, f"SELECT {q} FROM `{table.replace('`', '``')}`")
        out[table] = [dict(zip(cols, r, strict=True)) for r in rows]
    return out


def project(rows: dict, keep: set[tuple[str, str]]) -> dict[str, list[str]]:
    return {t: sorted(json.dumps({c: v for c, v in r.items() if (t, c) in keep},
                                 sort_keys=True) for r in rs) for t, rs in rows.items()
            if any(k[0] == t for k in keep)}


def load_case(env: TestEnv, name: str, reverse: bool) -> None:
    folder = CASES / name
    src, dst = ("target.sql", "source.sql") if reverse else ("source.sql", "target.sql")
    env.src(*split_sql((folder / src).read_text()))
    env.dst(*split_sql((folder / dst).read_text()))
    rows = folder / ("rows_reverse.sql" if reverse else "rows.sql")
    if rows.exists():
        env.dst(*split_sql(rows.read_text()))


def analyze(env: TestEnv) -> tuple[int, dict]:
    result = env.run("analyze", "--json")
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def expectations(case: str) -> dict:
    path = CASES / case / "expected.json"
    return json.loads(path.read_text()) if path.exists() else {}


def show_creates(server: Server, db: str) -> dict[str, str]:
    names = [r[0] for r in server.sql(None, "SELECT TABLE_NAME FROM information_schema.TABLES "
                                      f"WHERE TABLE_SCHEMA = '{db}' ORDER BY 1")]
    return {n: server.sql(db, f"SHOW CREATE TABLE `{n}`")[0][1] for n in names}


def assert_refused_unchanged(env: TestEnv, result: object, creates: dict, rows: dict,
                             types: dict) -> None:
    """The preflight refused the plan (exit 5) and the target is exactly as it was."""
    assert result.exit_code == 5, result.output  # type: ignore[attr-defined]
    assert "preflight" in result.output  # type: ignore[attr-defined]
    assert show_creates(env.target, env.database) == creates
    assert snapshot(env.target, env.database, types) == rows
    assert not env.target.sql(None, "SHOW DATABASES LIKE '\\_dl\\_rehearsal%'")


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("case", CASE_NAMES)
def test_case_round_trip(env: TestEnv, case: str, direction: str) -> None:
    load_case(env, case, direction == "reverse")
    if direction == "forward" and os.environ.get("DUMPLOAD_RECORD_CASES"):
        record_case(env, case)
    before_types = column_types(env.target, env.database)
    before = snapshot(env.target, env.database, before_types)
    code, plan = analyze(env)
    assert code == (0 if plan["identical"] else 1)
    if plan["unsafe"]:
        refused = env.run("structure", "--yes", "--no-backup")
        assert refused.exit_code == 5, refused.output
        assert "unsafe" in refused.output
        assert analyze(env)[1]["statements"] == plan["statements"], "refusal wrote something"
    if direction in expectations(case).get("refused", []):
        creates = show_creates(env.target, env.database)
        result = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
        assert_refused_unchanged(env, result, creates, before, before_types)
        return
    result = env.run("structure", "--yes", "--no-backup", "--allow-unsafe")
    assert result.exit_code == 0, result.output
    code, left = analyze(env)
    assert code == 0, json.dumps(left["differences"], indent=1)
    after_types = column_types(env.target, env.database)
    keep = {k for k, v in before_types.items() if after_types.get(k) == v}
    after = snapshot(env.target, env.database, after_types)
    assert project(after, keep) == project(before, keep)


def record_case(env: TestEnv, case: str) -> None:
    """Record the case's catalog rows and expected plan (DUMPLOAD_RECORD_CASES=1)."""
    config = load_config(env.config_path)
    with session(config.source, config.settings) as src, \
            session(config.target, config.settings) as dst:
        record(CASES / case, env.database, dst.server.flavor, dst.server.version,
               read_catalog(src), read_catalog(dst))
