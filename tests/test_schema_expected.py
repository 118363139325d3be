"""Every schema case folder with recorded catalog rows gives the recorded plan, without a
server: the diff's statements and unsafe verdicts are pinned per case and direction."""

from __future__ import annotations

import json

import pytest

from tests.case_records import CASES, expected_plan

RECORDED = sorted(p.name for p in CASES.iterdir()
                  if (p / "catalog.json").exists() and (p / "expected.json").exists())


def test_new_cases_are_recorded() -> None:
    assert len(RECORDED) >= 20


@pytest.mark.parametrize("direction", ["forward", "reverse"])
@pytest.mark.parametrize("case", RECORDED)
def test_case_plan_matches_expected(case: str, direction: str) -> None:
    expected = json.loads((CASES / case / "expected.json").read_text())[direction]
    got = expected_plan(CASES / case, direction)
    assert got["statements"] == expected["statements"]
    assert got["unsafe"] == expected["unsafe"]
