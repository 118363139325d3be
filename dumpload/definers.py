"""Definers: which objects a plan would create as another account, and whether we may.

dumpload creates triggers, views and routines as the connecting account
(`DEFINER=CURRENT_USER`) unless `--keep-definer` asks to keep the source's. Creating an
object as another account needs SUPER (MySQL: SET_USER_ID / SYSTEM_USER; MariaDB 10.5+:
SET USER). Without it the statement would fail half-way through a plan, so such a plan is
refused before its first statement, naming the objects. Reads grants; writes nothing.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable

import pymysql

from dumpload.config import DatabaseConfig, Settings
from dumpload.db import Session, connect
from dumpload.errors import StructureError

_DEFINER = re.compile(
    r"\bDEFINER\s*=\s*('(?:[^']|'')*'|`(?:[^`]|``)*`|\w+)@('(?:[^']|'')*'|`(?:[^`]|``)*`|[\w.%-]+)"
    r".{0,120}?\b(TRIGGER|VIEW|PROCEDURE|FUNCTION|EVENT)\s+((?:`(?:[^`]|``)+`|\w+))",
    re.I | re.S)
_SET_USER = ("SUPER", "SET USER", "SET_USER_ID", "ALL PRIVILEGES")


def foreign_definers(statements: Iterable[str]) -> list[tuple[str, str]]:
    """(object, definer) for every statement that names an explicit definer (pure)."""
    out = []
    for sql in statements:
        for m in _DEFINER.finditer(sql):
            user, host = (_unquote(x) for x in m.group(1, 2))
            out.append((f"{m.group(3).lower()} {_unquote(m.group(4))}", f"{user}@{host}"))
    return out


def _unquote(text: str) -> str:
    if text[:1] in ("'", "`") and text[-1:] == text[:1]:
        return text[1:-1].replace(text[0] * 2, text[0])
    return text


def current_account(session: Session) -> str:
    return str(session.scalar("SELECT CURRENT_USER()"))


def may_set_definer(session: Session) -> bool:
    """Whether the account may create objects as another account (global grants)."""
    try:
        grants = [str(r[0]).upper() for r in session.query("SHOW GRANTS")]
    except pymysql.err.MySQLError:
        return False
    return any(" ON *.* " in g and any(p in g for p in _SET_USER) for g in grants)


def refused_definers(session: Session, statements: Iterable[str]) -> list[str]:
    """Objects the plan would create as another account that this account may not use."""
    mine = current_account(session).lower()
    foreign = [(obj, who) for obj, who in foreign_definers(statements) if who.lower() != mine]
    if not foreign or may_set_definer(session):
        return []
    return [f"{obj} (DEFINER={who})" for obj, who in foreign]


def check_definers(db: DatabaseConfig, settings: Settings, statements: Iterable[str]) -> None:
    """Refuse (exit 5, nothing written) a plan that keeps definers this account may not use."""
    with contextlib.closing(connect(db, settings)) as session:
        refused = refused_definers(session, statements)
        account = current_account(session)
    if refused:
        raise StructureError(
            f"{len(refused)} object(s) would be created as another account, which "
            f"{account} may not do (needs SUPER or SET USER); nothing was changed: "
            + ", ".join(refused[:10]),
            hint="drop --keep-definer to create them as the connecting account, or grant "
            "the account SUPER / SET USER")
