"""Package exports loaded on first use (PEP 562 module `__getattr__`).

`dumpload.data` re-exports its entry points, but importing a submodule such as
`dumpload.data.tables` must not load the whole package: the swap executor, a process
started for every swap, needs a few names and would otherwise spend a fifth of a second
importing the copy engine. An export may not share its name with a submodule (importing
the submodule would bind the module to that name): `dumpload.schema`, whose `diff` is
also a submodule, stays eager.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def exports(package: str, names: dict[str, str]) -> Callable[[str], Any]:
    """A module `__getattr__` resolving each of `names` (name → submodule) on first use."""
    def __getattr__(name: str) -> Any:
        module = names.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)
    return __getattr__
