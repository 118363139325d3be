"""Table data: fast, exact, atomic copies between servers, checksums, export and import.

Public API (the CLI and the `sync` flow call these; none of them prints):
`plan_copy`, `copy_tables`, `verify_tables`, `export_tables`,
`import_tables`.

The exports load on first use (PEP 562 `__getattr__`): importing a submodule such as
`dumpload.data.tables` must not load the copy engine, or the swap executor, a process
started for every swap, would spend a fifth of a second importing it. (An export may not
share a submodule's name: importing the submodule would rebind it.)
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from dumpload.data.copy import copy_tables
    from dumpload.data.engine import CopyFailed, CopyReport
    from dumpload.data.plan import TablePlan, plan_copy
    from dumpload.data.verify import TableCheck, VerifyReport, verify_tables

__all__ = ["CopyFailed", "CopyReport", "TableCheck", "TablePlan", "VerifyReport",
           "copy_tables", "plan_copy", "verify_tables"]

_EXPORTS = {"copy_tables": "copy", "CopyFailed": "engine", "CopyReport": "engine",
            "TablePlan": "plan", "plan_copy": "plan", "TableCheck": "verify",
            "VerifyReport": "verify", "verify_tables": "verify"}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
