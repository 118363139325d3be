"""Schema case folders without a server: recorded catalog rows and the expected plan.

`catalog.json` holds the rows `dumpload.schema.inspect.read_catalog` returned for the
case's source.sql and target.sql on a real server (recorded by the round-trip test when
DUMPLOAD_RECORD_CASES=1). `expected.json` holds, per direction, the plan's statements and
its unsafe changes as (table, kind, name). `expected_plan` rebuilds both from the rows, so
the diff is checked against them by a unit test with no server at all.
"""

from __future__ import annotations

import datetime
import decimal
import json
from pathlib import Path
from typing import Any

from dumpload.schema.diff import diff
from dumpload.schema.inspect import build_schema
from dumpload.schema.plan import Plan

CASES = Path(__file__).parent / "schema_cases"


def plain(value: Any) -> Any:
    """Catalog values as JSON: bytes as text, dates and decimals as strings."""
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    if isinstance(value, datetime.date | datetime.datetime | datetime.timedelta
                  | decimal.Decimal):
        return str(value)
    return value


def dump_rows(rows: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    return {k: [{c: plain(v) for c, v in r.items()} for r in rs] for k, rs in rows.items()}


def plan_summary(plan: Plan) -> dict[str, Any]:
    return {"statements": list(plan.statements),
            "unsafe": sorted([c.table, c.kind, c.name] for c in plan.unsafe)}


def expected_plan(folder: Path, direction: str) -> dict[str, Any]:
    """The plan summary from the recorded rows, forward (source → target) or reverse."""
    doc = json.loads((folder / "catalog.json").read_text())
    version = tuple(doc["version"])
    schemas = {role: build_schema(doc["database"], doc["flavor"], version, doc[role])
               for role in ("source", "target")}
    src, dst = ("target", "source") if direction == "reverse" else ("source", "target")
    return plan_summary(diff(schemas[src], schemas[dst]))


def record(folder: Path, database: str, flavor: str, version: tuple[int, int, int],
           source_rows: dict, target_rows: dict) -> None:
    """Write catalog.json, then expected.json from it (both directions)."""
    doc = {"database": database, "flavor": flavor, "version": list(version),
           "source": dump_rows(source_rows), "target": dump_rows(target_rows)}
    (folder / "catalog.json").write_text(json.dumps(doc, indent=1, sort_keys=True) + "\n")
    expected = {d: expected_plan(folder, d) for d in ("forward", "reverse")}
    old = json.loads((folder / "expected.json").read_text()) \
        if (folder / "expected.json").exists() else {}
    expected.update({k: v for k, v in old.items() if k not in expected})  # keep extra keys
    (folder / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")
