"""SQL text helpers shared by every module that writes statements."""

from __future__ import annotations


def quote(name: str) -> str:
    """A backtick-quoted identifier (backticks inside doubled): safe for any table,
    column or index name, including spaces, reserved words and non-ASCII."""
    return "`" + name.replace("`", "``") + "`"
