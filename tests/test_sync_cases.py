"""`sync --allow-unsafe` converges on every schema case folder (structure *and* data), in
both directions.

The structure cases (tests/schema_cases) hold rows for the target; here the same rows are
also put on the source where they fit its schema, so the data step has work to do.
"""

from __future__ import annotations

import contextlib
import json

import pymysql
import pytest

from tests.support import TestEnv
from tests.test_schema_cases import CASE_NAMES, CASES, load_case, split_sql


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("name", CASE_NAMES)
def test_sync_converges_on_schema_case(env: TestEnv, name: str, reverse: bool) -> None:
    load_case(env, name, reverse)
    rows = CASES / name / ("rows_reverse.sql" if reverse else "rows.sql")
    if rows.exists():
        for stmt in split_sql(rows.read_text()):
            with contextlib.suppress(pymysql.err.MySQLError):  # rows that fit the source
                env.src(stmt)
    expected = CASES / name / "expected.json"
    refused = json.loads(expected.read_text()).get("sync_refused", []) \
        if expected.exists() else []
    result = env.run("sync", "--yes", "--allow-unsafe")
    if ("reverse" if reverse else "forward") in refused:
        assert result.exit_code == 5 and "preflight" in result.output, result.output
        return
    assert result.exit_code == 0, result.stdout + result.stderr
    assert env.run("analyze").exit_code == 0
    verify = env.run("verify")
    assert verify.exit_code == 0, verify.stdout + verify.stderr
