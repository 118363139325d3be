"""Stored procedures, functions and events: the model, read from the catalog, and their plan.

Invariants:
- Compared: parameters (mode, name, type), return type, body, DETERMINISTIC, data access,
  SQL SECURITY, comment, the `sql_mode` and character set context they were created under,
  and for events the schedule, status, ON COMPLETION and time zone. The DEFINER is not
  compared (unless the caller keeps definers): it is rewritten to CURRENT_USER when created,
  as views and triggers are.
- Each object is re-created from the server's own `SHOW CREATE` text (exact parameters and
  body), under the source's `sql_mode`, `character_set_client`/`collation_connection` and,
  for events, `time_zone`: a `Step.context` carries them to `apply`.
- A changed object is dropped and created again (MySQL has no CREATE OR REPLACE for them);
  an object only in the target is dropped, which is unsafe. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dumpload.sqltext import quote

Row = Mapping[str, Any]
_ACCOUNT_PART = r"(?:`(?:[^`]|``)*`|\"(?:[^\"]|\"\")*\"|'(?:[^'\\]|''|\\.)*'|[\w.%-]+)"
_DEFINER = re.compile(rf"^(\s*CREATE\s+)DEFINER\s*=\s*(?:{_ACCOUNT_PART}@{_ACCOUNT_PART}"
                      r"|CURRENT_USER(?:\(\))?)\s+", re.I)


@dataclass(frozen=True)
class Routine:
    kind: str                       # PROCEDURE or FUNCTION
    name: str
    params: tuple[tuple[str, str, str], ...] = ()   # (mode, name, type)
    returns: str = ""
    body: str = ""
    deterministic: bool = False
    data_access: str = "CONTAINS SQL"
    security: str = "DEFINER"
    comment: str = ""
    sql_mode: str = ""
    definer: str = ""
    charset_client: str = "utf8mb4"
    collation_connection: str = "utf8mb4_general_ci"
    create: str = ""                # SHOW CREATE text, DEFINER as on the server

    @property
    def key(self) -> str:
        return f"{self.kind} {self.name}"

    def compared(self, keep_definer: bool) -> tuple[Any, ...]:
        return (self.params, self.returns, self.body.strip(), self.deterministic,
                self.data_access, self.security, self.comment, self.sql_mode,
                self.collation_connection, self.definer if keep_definer else "")

    def signature(self) -> str:
        params = ", ".join(" ".join(x for x in p if x) for p in self.params)
        text = f"{self.kind} {self.name}({params})"
        return text + (f" RETURNS {self.returns}" if self.returns else "")

    def create_sql(self, keep_definer: bool = False) -> str:
        text = self.create or self._rendered()
        return text if keep_definer else current_user_definer(text)

    def _rendered(self) -> str:
        """Only when SHOW CREATE gave nothing (privileges): rebuilt from the catalog."""
        params = ", ".join(f"{mode} {quote(name)} {ptype}".strip() if mode else
                           f"{quote(name)} {ptype}" for mode, name, ptype in self.params)
        text = f"CREATE DEFINER=CURRENT_USER {self.kind} {quote(self.name)}({params})"
        if self.returns:
            text += f" RETURNS {self.returns}"
        text += f"\n    {self.data_access}"
        text += "\n    DETERMINISTIC" if self.deterministic else ""
        text += f"\n    SQL SECURITY {self.security}"
        if self.comment:
            text += " COMMENT '" + self.comment.replace("\\", "\\\\").replace("'", "''") + "'"
        return text + "\n" + self.body

    def drop_sql(self) -> str:
        return f"DROP {self.kind} IF EXISTS {quote(self.name)}"

    def context(self) -> tuple[tuple[str, str], ...]:
        return (("character_set_client", self.charset_client),
                ("collation_connection", self.collation_connection))


@dataclass(frozen=True)
class Event:
    name: str
    body: str = ""
    schedule: tuple[str, ...] = ()  # type, execute_at, interval value/field, starts, ends
    status: str = "ENABLED"
    on_completion: str = "NOT PRESERVE"
    comment: str = ""
    sql_mode: str = ""
    time_zone: str = "SYSTEM"
    definer: str = ""
    charset_client: str = "utf8mb4"
    collation_connection: str = "utf8mb4_general_ci"
    create: str = ""

    kind = "EVENT"

    @property
    def key(self) -> str:
        return f"EVENT {self.name}"

    def compared(self, keep_definer: bool) -> tuple[Any, ...]:
        return (self.body.strip(), self.schedule, self.status, self.on_completion,
                self.comment, self.sql_mode, self.time_zone, self.collation_connection,
                self.definer if keep_definer else "")

    def signature(self) -> str:
        return f"EVENT {self.name} " + " ".join(x for x in self.schedule if x)

    def create_sql(self, keep_definer: bool = False) -> str:
        text = self.create or self._rendered()
        return text if keep_definer else current_user_definer(text)

    def _rendered(self) -> str:
        """Only when SHOW CREATE gave nothing (privileges): rebuilt from the catalog."""
        kind, at, value, unit, starts, ends = (self.schedule + ("",) * 6)[:6]
        when = (f"AT '{at}'" if kind == "ONE TIME" else f"EVERY {value} {unit}"
                + (f" STARTS '{starts}'" if starts else "") + (f" ENDS '{ends}'" if ends else ""))
        status = {"ENABLED": "ENABLE", "DISABLED": "DISABLE"}.get(self.status,
                                                                  "DISABLE ON SLAVE")
        comment = ("COMMENT '" + self.comment.replace("\\", "\\\\").replace("'", "''") + "' "
                   if self.comment else "")
        return (f"CREATE DEFINER=CURRENT_USER EVENT {quote(self.name)} ON SCHEDULE {when} "
                f"ON COMPLETION {self.on_completion} {status} {comment}DO {self.body}")

    def drop_sql(self) -> str:
        return f"DROP EVENT IF EXISTS {quote(self.name)}"

    def context(self) -> tuple[tuple[str, str], ...]:
        return (("character_set_client", self.charset_client),
                ("collation_connection", self.collation_connection),
                ("time_zone", self.time_zone))


def current_user_definer(create: str) -> str:
    """`CREATE DEFINER=`u`@`h` PROCEDURE ...` → `CREATE DEFINER=CURRENT_USER PROCEDURE ...`.

    The target account may lack SUPER/SET_USER_ID, which naming another definer needs.
    """
    return _DEFINER.sub(r"\1DEFINER=CURRENT_USER ", create, count=1)


# --- catalog rows → model ----------------------------------------------------------------------

def _text(value: Any) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes | bytearray) else str(value)


def _get(row: Row, key: str) -> Any:
    return row[key] if key in row else row.get(key.lower())


def _charset(name: str) -> str:
    name = name.lower()
    return "utf8mb3" + name[4:] if name == "utf8" or name.startswith("utf8_") else name


def _param_type(row: Row) -> str:
    from dumpload.schema.flavor import normalize_type
    ptype = normalize_type(_text(_get(row, "DTD_IDENTIFIER")) or _text(_get(row, "DATA_TYPE")))
    charset = _text(_get(row, "CHARACTER_SET_NAME"))
    if charset and "charset" not in ptype.lower():
        ptype += f" CHARSET {_charset(charset)}"
    return ptype


def routines_from_rows(rows: Iterable[Row], params: Iterable[Row],
                       creates: Mapping[str, str]) -> dict[str, Routine]:
    """ROUTINES + PARAMETERS rows (+ SHOW CREATE text by `Routine.key`) → routines by key."""
    by_routine: dict[tuple[str, str], list[Row]] = {}
    for p in params:
        key = (_text(_get(p, "ROUTINE_TYPE")).upper(), _text(_get(p, "SPECIFIC_NAME")))
        by_routine.setdefault(key, []).append(p)
    out = {}
    for r in rows:
        kind, name = _text(_get(r, "ROUTINE_TYPE")).upper(), _text(_get(r, "ROUTINE_NAME"))
        plist = sorted(by_routine.get((kind, name), []),
                       key=lambda p: int(_get(p, "ORDINAL_POSITION") or 0))
        routine = Routine(
            kind=kind, name=name,
            params=tuple((_text(_get(p, "PARAMETER_MODE")).upper() if kind == "PROCEDURE"
                          else "", _text(_get(p, "PARAMETER_NAME")), _param_type(p))
                         for p in plist if int(_get(p, "ORDINAL_POSITION") or 0) > 0),
            returns=next((_param_type(p) for p in plist
                          if int(_get(p, "ORDINAL_POSITION") or 0) == 0), ""),
            body=_text(_get(r, "ROUTINE_DEFINITION")),
            deterministic=_text(_get(r, "IS_DETERMINISTIC")).upper() == "YES",
            data_access=_text(_get(r, "SQL_DATA_ACCESS")).upper() or "CONTAINS SQL",
            security=_text(_get(r, "SECURITY_TYPE")).upper() or "DEFINER",
            comment=_text(_get(r, "ROUTINE_COMMENT")),
            sql_mode=_text(_get(r, "SQL_MODE")), definer=_text(_get(r, "DEFINER")),
            charset_client=_charset(_text(_get(r, "CHARACTER_SET_CLIENT")) or "utf8mb4"),
            collation_connection=_charset(_text(_get(r, "COLLATION_CONNECTION")) or
                                          "utf8mb4_general_ci"))
        out[routine.key] = _with_create(routine, creates.get(routine.key, ""))
    return out


def _with_create(routine: Routine, create: str) -> Routine:
    from dataclasses import replace
    return replace(routine, create=create) if create else routine


def events_from_rows(rows: Iterable[Row], creates: Mapping[str, str]) -> dict[str, Event]:
    out = {}
    for r in rows:
        name = _text(_get(r, "EVENT_NAME"))
        event = Event(
            name=name, body=_text(_get(r, "EVENT_DEFINITION")),
            schedule=tuple(_text(_get(r, k)) for k in (
                "EVENT_TYPE", "EXECUTE_AT", "INTERVAL_VALUE", "INTERVAL_FIELD", "STARTS",
                "ENDS")),
            status=_text(_get(r, "STATUS")).upper() or "ENABLED",
            on_completion=_text(_get(r, "ON_COMPLETION")).upper() or "NOT PRESERVE",
            comment=_text(_get(r, "EVENT_COMMENT")), sql_mode=_text(_get(r, "SQL_MODE")),
            time_zone=_text(_get(r, "TIME_ZONE")) or "SYSTEM",
            definer=_text(_get(r, "DEFINER")),
            charset_client=_charset(_text(_get(r, "CHARACTER_SET_CLIENT")) or "utf8mb4"),
            collation_connection=_charset(_text(_get(r, "COLLATION_CONNECTION")) or
                                          "utf8mb4_general_ci"),
            create=creates.get(f"EVENT {name}", ""))
        out[event.key] = event
    return out


# --- planning ------------------------------------------------------------------------------

@dataclass(frozen=True)
class ObjectStep:
    """One statement for `diff._Builder.step`, with the session it must run in."""

    phase: str
    name: str
    sql: str
    items: tuple[tuple[Any, ...], ...]
    sql_mode: str | None = None
    context: tuple[tuple[str, str], ...] = ()


def plan_objects(source: Mapping[str, Routine | Event], target: Mapping[str, Routine | Event],
                 keep_definer: bool) -> tuple[list[tuple[Any, ...]], list[ObjectStep]]:
    """(differences, steps) that make the target's routines (or events) the source's.

    Differences are (name, object, name, what, source, target) as `plan.Difference` takes.
    """
    diffs: list[tuple[Any, ...]] = []
    steps: list[ObjectStep] = []
    for key in sorted(set(source) | set(target)):
        s, t = source.get(key), target.get(key)
        obj = (s or t).kind.lower()  # type: ignore[union-attr]
        name = (s or t).name  # type: ignore[union-attr]
        kind = "event" if obj == "event" else "routine"
        if s is not None and t is not None and s.compared(keep_definer) == \
                t.compared(keep_definer):
            continue
        if t is not None:
            if s is None:
                diffs.append((name, obj, name, "only in target", None, t.signature()))
                steps.append(ObjectStep(f"drop_{kind}", name, t.drop_sql(), (
                    (f"drop_{obj}", name, False,
                     f"{obj} only in target: dropping it breaks its callers"),)))
                continue
            diffs.append((name, obj, name, "differs", _describe(s, t, keep_definer),
                          t.signature()))
            steps.append(ObjectStep(f"drop_{kind}", name, t.drop_sql(), (
                (f"drop_{obj}", name, True, f"{obj} re-created with the source's definition"),
            )))
        elif s is not None:
            diffs.append((name, obj, name, "missing in target", s.signature(), None))
        assert s is not None
        steps.append(ObjectStep(f"create_{kind}", name, s.create_sql(keep_definer), (
            (f"create_{obj}", name, True, f"create {obj}"),), s.sql_mode, s.context()))
    return diffs, steps


def _describe(s: Routine | Event, t: Routine | Event, keep_definer: bool) -> str:
    """The source's version, naming what differs from the target's."""
    labels = (("parameters", "return type", "body", "deterministic", "data access",
               "SQL SECURITY", "comment", "sql_mode", "character set context", "definer")
              if isinstance(s, Routine) else
              ("body", "schedule", "status", "on completion", "comment", "sql_mode",
               "time zone", "character set context", "definer"))
    what = [label for label, a, b in zip(labels, s.compared(keep_definer),
                                         t.compared(keep_definer), strict=True) if a != b]
    return f"{s.signature()} ({', '.join(what) or 'definition'} differ)"


def object_names(objects: Mapping[str, Routine | Event]) -> Sequence[str]:
    return sorted(o.name for o in objects.values())
