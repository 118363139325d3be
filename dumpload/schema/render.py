"""Human-readable plan: per table what differs (source vs target), then the ordered SQL.

Returns text; printing is the CLI's business. Pure.
"""

from __future__ import annotations

from dumpload.schema.plan import Plan


def render_differences(plan: Plan) -> str:
    if plan.is_empty:
        return f"{plan.target}: identical to {plan.source} (no structure differences)"
    lines = []
    for table in plan.tables:
        diffs = [d for d in plan.differences if d.table == table]
        lines.append(f"{table}:")
        for d in diffs:
            lines.append(f"  {d.object} {d.name}: {d.what}")
            if d.source is not None:
                lines.append(f"      source: {_one_line(d.source)}")
            if d.target is not None:
                lines.append(f"      target: {_one_line(d.target)}")
    return "\n".join(lines)


def render_statements(plan: Plan) -> str:
    out = []
    for sql in plan.statements:
        out.append(sql.rstrip(";") + ";")
    return "\n".join(out)


def render_unsafe(plan: Plan) -> str:
    return "\n".join(f"  {c.table}: {c.kind} {c.name}: {c.reason}" for c in plan.unsafe)


def render_plan_text(plan: Plan) -> str:
    """The whole report: differences, unsafe changes, and the SQL in execution order."""
    parts = [render_differences(plan)]
    if plan.warnings:
        parts.append("\nnot compared:\n" + "\n".join(f"  {w}" for w in plan.warnings))
    if plan.refused:
        parts.append(f"\nnot supported ({len(plan.refused)}; these tables are refused):\n"
                     + "\n".join(f"  {r}" for r in plan.refused))
    if plan.is_empty:
        return "\n".join(parts)
    if plan.unsafe:
        parts.append(f"\nunsafe changes ({len(plan.unsafe)}; need --allow-unsafe):\n"
                     + render_unsafe(plan))
    parts.append(f"\nplan ({len(plan.statements)} statements):\n" + render_statements(plan))
    return "\n".join(parts)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
