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
        cost = plan.preflight.cost_of(sql) if plan.preflight else None
        if cost is not None:
            out.append(f"  -- {cost.describe()}")
    return "\n".join(out)


def render_preflight(plan: Plan) -> str:
    """The preflight's verdicts: rows that do not fit, the rehearsal, locking ALTERs."""
    pf = plan.preflight
    if pf is None:
        return ""
    lines = [f"preflight ({len(pf.verdicts)} data checks on the target):"]
    for v in pf.verdicts:
        if v.ok:
            continue
        action = "REFUSED" if v.fix_sql is None or not plan.allow_unsafe else "converted"
        lines.append(f"  {action}: {v.describe()}")
        if v.fix_sql:
            lines.append(f"      conversion ({v.rows} rows): {v.fix_sql}")
    if not pf.failed:
        lines.append("  every row fits the new definitions")
    if pf.rehearsal_error:
        lines.append(f"  REFUSED: rehearsal failed: {pf.rehearsal_error}")
    elif pf.rehearsed:
        lines.append("  rehearsal on empty copies in a scratch schema: ok")
    lines += [f"  not rehearsed: {s}" for s in pf.skipped]
    for cost in plan.locking:
        lines.append(f"  LOCKS {cost.table}: ALGORITHM={cost.algorithm} blocks writes to it for "
                     f"{cost.estimate_text()} (asked separately unless --yes)")
    return "\n".join(lines)


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
    if plan.preflight is not None:
        parts.append("\n" + render_preflight(plan))
    parts.append(f"\nplan ({len(plan.statements)} statements):\n" + render_statements(plan))
    return "\n".join(parts)


def _one_line(text: str, limit: int = 300) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[:limit - 1] + "…"
