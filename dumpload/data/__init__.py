"""Table data: fast, exact, atomic copies between servers, checksums, export and import.

Public API (the CLI and the `sync` flow call these; none of them prints):
`plan_copy`, `copy_tables`, `verify_tables`, `export_tables`,
`import_tables`. Loaded on first use (`dumpload.lazy`).
"""

from typing import TYPE_CHECKING

from dumpload.lazy import exports

if TYPE_CHECKING:
    from dumpload.data.copy import copy_tables
    from dumpload.data.engine import CopyFailed, CopyReport
    from dumpload.data.plan import TablePlan, plan_copy
    from dumpload.data.verify import TableCheck, VerifyReport, verify_tables

__all__ = ["CopyFailed", "CopyReport", "TableCheck", "TablePlan", "VerifyReport",
           "copy_tables", "plan_copy", "verify_tables"]

__getattr__ = exports(__name__, {
    "copy_tables": "copy", "CopyFailed": "engine", "CopyReport": "engine",
    "TablePlan": "plan", "plan_copy": "plan", "TableCheck": "verify",
    "VerifyReport": "verify", "verify_tables": "verify"})
