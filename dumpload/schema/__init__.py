"""Schema comparison: inspect → model → diff → plan (pure) → apply.

Public entry points (the `analyze`/`structure` commands and the `sync` flow call these):
`load_schema`, `plan_structure`, `diff`, `render_plan_text`, `apply_plan`.
"""

from dumpload.schema.apply import apply_plan, plan_structure
from dumpload.schema.diff import diff
from dumpload.schema.inspect import load_schema
from dumpload.schema.model import Schema
from dumpload.schema.plan import Change, Difference, Plan
from dumpload.schema.render import render_plan_text

__all__ = ["Change", "Difference", "Plan", "Schema", "apply_plan", "diff", "load_schema",
           "plan_structure", "render_plan_text"]
