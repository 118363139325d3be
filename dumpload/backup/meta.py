"""What a backup records for ops beyond its tables: binlog/GTID position, routines, events.

`MetaCapture` sits in the dump stream before the frame writer and keeps the text of the
sections that are not table data (header, routines, events, footer: a few KB each). From
it `parse_binlog` reads the coordinates the dump tool wrote for its snapshot
(`--master-data=2`: `-- CHANGE MASTER TO MASTER_LOG_FILE='f', MASTER_LOG_POS=n;` and, with
MariaDB's `--gtid`, `-- SET GLOBAL gtid_slave_pos='...'`), and `check_objects` counts the
routines and events the dump holds against the catalog, refusing a full backup that
silently lost some (the dump tool exits 0 and writes only a comment when the account may
not read a routine's body). Pure apart from `count_objects`, which reads the catalog.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from dumpload.db import Session
from dumpload.errors import BackupError

META_KINDS = ("header", "routines", "events", "footer")
_CAP = 64 << 20  # routines of a huge schema still fit; anything beyond is not kept

_POSITION = re.compile(
    rb"^-- CHANGE (?:MASTER|REPLICATION SOURCE) TO (?:MASTER|SOURCE)_LOG_FILE='([^']+)', "
    rb"(?:MASTER|SOURCE)_LOG_POS=(\d+)", re.M)
_GTID = re.compile(rb"^-- SET GLOBAL gtid_slave_pos='([^']*)'", re.M)
_MYSQL_GTID = re.compile(rb"GTID_PURGED='\+?([^']*)'", re.M)
_ROUTINE = re.compile(rb"^/\*!50003 DROP (PROCEDURE|FUNCTION) IF EXISTS ", re.M)
_EVENT = re.compile(rb"^/\*!50106 DROP EVENT IF EXISTS ", re.M)
_NO_PRIVILEGE = re.compile(rb"^-- insufficient privileges to SHOW CREATE (\w+) (`(?:[^`]|``)+`)",
                           re.M)


class MetaCapture:
    """Forwards the stream unchanged; keeps the bytes of the non-table sections."""

    def __init__(self, on_bytes: Callable[[bytes], None],
                 on_section: Callable[[str, str | None], None]) -> None:
        self._on_bytes = on_bytes
        self._on_section = on_section
        self._kind = "header"
        self.parts: dict[str, bytearray] = {}

    def section(self, kind: str, name: str | None) -> None:
        self._kind = kind
        self._on_section(kind, name)

    def write(self, data: bytes) -> None:
        if self._kind in META_KINDS:
            part = self.parts.setdefault(self._kind, bytearray())
            if len(part) < _CAP:
                part += data
        self._on_bytes(data)

    def text(self, kind: str | None = None) -> bytes:
        if kind is not None:
            return bytes(self.parts.get(kind, b""))
        return b"".join(bytes(p) for p in self.parts.values())


def parse_binlog(text: bytes) -> dict[str, Any] | None:
    """{"file", "position", "gtid"} from the dump's comments; None if it wrote none."""
    match = _POSITION.search(text)
    if not match:
        return None
    gtid = _GTID.search(text) or _MYSQL_GTID.search(text)
    return {"file": match.group(1).decode(), "position": int(match.group(2)),
            "gtid": gtid.group(1).decode() if gtid else None}


def count_objects(s: Session) -> dict[str, int]:
    """Routines and events of the session's database, as the account sees them."""
    db = s.env.database
    rows = dict(s.query("SELECT ROUTINE_TYPE, COUNT(*) FROM information_schema.ROUTINES "
                        "WHERE ROUTINE_SCHEMA = %s GROUP BY ROUTINE_TYPE", (db,)))
    events = int(s.scalar("SELECT COUNT(*) FROM information_schema.EVENTS "
                          "WHERE EVENT_SCHEMA = %s", (db,)) or 0)
    return {"procedures": int(rows.get("PROCEDURE", 0)),
            "functions": int(rows.get("FUNCTION", 0)), "events": events}


def dumped_objects(capture: MetaCapture) -> dict[str, int]:
    """Routines and events the dump wrote (each is preceded by its DROP ... IF EXISTS)."""
    routines = [m.group(1) for m in _ROUTINE.finditer(capture.text("routines"))]
    return {"procedures": routines.count(b"PROCEDURE"),
            "functions": routines.count(b"FUNCTION"),
            "events": len(_EVENT.findall(capture.text("events")))}


def check_objects(env_name: str, capture: MetaCapture,
                  catalog: dict[str, int]) -> dict[str, int]:
    """The dumped counts; `BackupError` if the dump left out a routine or an event."""
    refused = [f"{m.group(1).decode().lower()} {m.group(2).decode()}"
               for m in _NO_PRIVILEGE.finditer(capture.text("routines"))]
    if refused:
        raise BackupError(f"backup of {env_name!r} failed: the account may not read "
                          f"{', '.join(refused)} (the dump would lack it)",
                          hint="GRANT SELECT ON mysql.proc (MariaDB; SHOW_ROUTINE on MySQL) "
                          "to the account, see `dumpload doctor`")
    dumped = dumped_objects(capture)
    lost = [f"{kind} ({dumped[kind]} of {n})" for kind, n in catalog.items()
            if dumped.get(kind, 0) < n]
    if lost:
        raise BackupError(f"backup of {env_name!r} failed: the dump lacks some "
                          f"{', '.join(lost)}", hint="check the account's privileges with "
                          "`dumpload doctor` (EVENT, SELECT on mysql.proc)")
    return dumped
