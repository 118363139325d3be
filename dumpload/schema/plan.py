"""The plan: ordered steps (statements), the changes each carries, and the differences seen.

A `Change` is one thing made equal (a column added, an index changed, a table created);
it knows the statement that carries it, whether it is safe, and why. Several changes of
one table share one ALTER TABLE so the server copies a table at most once. Pure data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# The sql_mode DDL runs under: strict, so an ALTER that would truncate or convert existing
# values fails instead of silently changing rows.
APPLY_SQL_MODE = "STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION"

# Global order of steps. FKs and triggers go first, so no later change trips over them;
# tables before the constraints and views that need them; views before triggers.
PHASES = ("drop_event", "drop_routine", "drop_trigger", "drop_view", "drop_constraint",
          "create_table", "alter_table", "rebuild_table", "add_foreign_key", "drop_table",
          "create_routine", "create_view", "create_trigger", "create_event")


@dataclass(frozen=True)
class Difference:
    """What differs, for people: per object, the source's and the target's version."""

    table: str
    object: str            # table, column, index, foreign key, check, option, view, trigger
    name: str
    what: str              # missing in target, only in target, differs, position
    source: str | None = None
    target: str | None = None


@dataclass(frozen=True)
class Change:
    table: str             # the table (or view) the change is about
    kind: str              # add_column, drop_column, modify_column, add_index, ...
    name: str              # the column/index/constraint/view/trigger name
    sql: str               # the statement that carries it (what is executed)
    safe: bool
    reason: str            # what it does; for unsafe changes, why it is unsafe

    @property
    def summary(self) -> str:
        return f"{self.kind.replace('_', ' ')} {self.name}: {self.reason}"


@dataclass(frozen=True)
class Step:
    """One statement to execute, with the session settings it needs."""

    phase: str
    table: str
    sql: str
    sql_mode: str | None = None   # triggers are created under the source's sql_mode
    kind: str = ""                # the step's kind, e.g. "rebuild" (several statements)
    statements: tuple[str, ...] = ()
    fallback: tuple[str, ...] = ()   # rebuild statements if the server refuses `sql`
    # Session variables set around the statement (routines and events are created under
    # the source's character_set_client, collation_connection and time_zone).
    context: tuple[tuple[str, str], ...] = ()

    @property
    def all_sql(self) -> tuple[str, ...]:
        return self.statements or (self.sql,)


@dataclass(frozen=True)
class Plan:
    source: str
    target: str
    steps: tuple[Step, ...] = ()
    changes: tuple[Change, ...] = ()
    differences: tuple[Difference, ...] = ()
    touched_tables: tuple[str, ...] = ()    # existing target tables altered/dropped/rebuilt
    created_tables: tuple[str, ...] = ()
    dropped_tables: tuple[str, ...] = ()
    allow_unsafe: bool = False
    keep_definer: bool = False
    warnings: tuple[str, ...] = field(default=())
    # Tables with a clause the model cannot represent ("table: not supported: ..."): the
    # plan is refused (exit 5) whatever the flags, never applied without the clause.
    refused: tuple[str, ...] = ()
    preflight: Any = None      # schema.preflight.Preflight once checked against the target

    def refusals(self) -> list[str]:
        """Why the preflight refuses this plan (empty: it does not, or did not run)."""
        return self.preflight.refusals(self.allow_unsafe) if self.preflight else []

    @property
    def locking(self) -> tuple[Any, ...]:
        """Costs of statements that block writes to a large table while they run."""
        return tuple(c for c in self.preflight.costs if c.locks_table) if self.preflight \
            else ()

    @property
    def statements(self) -> tuple[str, ...]:
        return tuple(sql for step in self.steps for sql in step.all_sql)

    @property
    def unsafe(self) -> tuple[Change, ...]:
        return tuple(c for c in self.changes if not c.safe)

    @property
    def is_empty(self) -> bool:
        return not self.differences and not self.steps and not self.refused

    @property
    def tables(self) -> tuple[str, ...]:
        """Every table or view with a difference, in first-seen order."""
        return tuple(dict.fromkeys(d.table for d in self.differences))

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source, "target": self.target, "identical": self.is_empty,
            "differences": [asdict(d) for d in self.differences],
            "changes": [asdict(c) for c in self.changes],
            "statements": list(self.statements),
            "unsafe": [asdict(c) for c in self.unsafe],
            "touched_tables": list(self.touched_tables),
            "created_tables": list(self.created_tables),
            "dropped_tables": list(self.dropped_tables),
            "warnings": list(self.warnings),
            "preflight": self.preflight.to_dict() if self.preflight else None,
            "refused": list(self.refused),
        }
