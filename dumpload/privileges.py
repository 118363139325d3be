"""Which privileges each command needs, and which the account actually has.

The requirement table below is derived from the statements the code runs (keep it in step
when a command starts running something new):
- backup create: the dump tool with `--single-transaction --triggers` (SELECT, SHOW VIEW for
  views, TRIGGER for triggers; no LOCK TABLES: the snapshot is a transaction); a whole
  database adds `--events` (EVENT) and `--routines` (routine bodies: SELECT on mysql.proc
  on MariaDB, SHOW_ROUTINE on MySQL);
- backup restore / rollback: work tables created, loaded, indexed and swapped in
  (CREATE, DROP, ALTER, INSERT, INDEX, REFERENCES for the FKs, TRIGGER, CREATE VIEW,
  LOCK TABLES for the swap's `LOCK TABLES ... WRITE`), row counts (SELECT), the pre-restore
  backup (the backup privileges); a whole-database restore replays routines and events
  (CREATE ROUTINE, ALTER ROUTINE, EVENT); `LOAD DATA LOCAL` needs no FILE privilege;
- data, import, structure, sync: the same write set plus DELETE (delta copies remove rows)
  and their pre-change backup;
- reading a source (analyze, verify, data, sync, export): SELECT, SHOW VIEW and TRIGGER
  (view and trigger definitions), LOCK TABLES (the copy opens its snapshot under a brief
  `LOCK TABLES ... READ`).
Grants are read with SHOW GRANTS (MariaDB includes the active default role and the roles it
holds; MySQL is asked `USING` its active roles) and matched at global and database level,
database patterns with `%`/`_` included. Table- and column-level grants do not count: the
commands work on whole databases. `required`, `parse_grant` and `missing` are pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from dumpload.db import Session
from dumpload.sqltext import quote

BACKUP = ("SELECT", "SHOW VIEW", "TRIGGER")
WRITE = ("SELECT", "CREATE", "DROP", "ALTER", "INSERT", "INDEX", "REFERENCES", "TRIGGER",
         "CREATE VIEW", "SHOW VIEW", "LOCK TABLES")
ROUTINES_RESTORE = ("CREATE ROUTINE", "ALTER ROUTINE", "EVENT")
SOURCE_READ = ("SELECT", "SHOW VIEW", "TRIGGER", "LOCK TABLES")

# command -> database-level privileges it needs, per role of the environment
_TARGET_COMMANDS: dict[str, tuple[str, ...]] = {
    "backup create": BACKUP,
    "backup create (whole database)": (*BACKUP, "EVENT"),
    "backup restore": (*WRITE, *BACKUP),
    "backup restore (whole database)": ROUTINES_RESTORE,
    "rollback": (*WRITE, *BACKUP),
    "data": (*WRITE, "DELETE"),
    "import": (*WRITE, "DELETE"),
    "structure": WRITE,
    "sync": (*WRITE, "DELETE"),
}
_SOURCE_COMMANDS: dict[str, tuple[str, ...]] = {
    "analyze": ("SELECT", "SHOW VIEW", "TRIGGER"),
    "verify": ("SELECT", "SHOW VIEW", "TRIGGER"),
    "data": SOURCE_READ,
    "sync": SOURCE_READ,
    "export": ("SELECT", "LOCK TABLES"),
    "backup create": BACKUP,
    "backup create (whole database)": (*BACKUP, "EVENT"),
}


@dataclass(frozen=True)
class Requirement:
    """One privilege, where it must be granted, and the commands that need it."""

    privilege: str
    on: str = "database"          # "database" (`db`.* or *.*), or "mysql.proc", or "global"
    commands: tuple[str, ...] = field(default=(), compare=False)

    def __str__(self) -> str:
        if self.on == "database":
            return self.privilege
        return f"{self.privilege} ON {'*.*' if self.on == 'global' else self.on}"


def required(role: str, flavor: str) -> list[Requirement]:
    """What the commands run against an env of this role ("source", "target", "other")."""
    table = _SOURCE_COMMANDS if role == "source" else _TARGET_COMMANDS
    by_priv: dict[str, list[str]] = {}
    for command, privs in table.items():
        for p in privs:
            by_priv.setdefault(p, []).append(command)
    out = [Requirement(p, "database", tuple(c)) for p, c in by_priv.items()]
    whole = "backup create (whole database)"
    if flavor == "mysql":
        out.append(Requirement("SHOW_ROUTINE", "global", (whole,)))
    else:
        out.append(Requirement("SELECT", "mysql.proc", (whole,)))
    return out


@dataclass
class Grants:
    """An account's privileges: global, per database pattern, per table."""

    global_: set[str] = field(default_factory=set)
    databases: dict[str, set[str]] = field(default_factory=dict)   # LIKE pattern -> privs
    tables: dict[tuple[str, str], set[str]] = field(default_factory=dict)

    def add(self, privs: Iterable[str], schema: str, table: str) -> None:
        privs = set(privs)
        if schema == "*":
            self.global_ |= privs
        elif table == "*":
            self.databases.setdefault(schema, set()).update(privs)
        else:
            self.tables.setdefault((schema, table), set()).update(privs)

    def on_database(self, database: str) -> set[str]:
        have = set(self.global_)
        for pattern, privs in self.databases.items():
            if schema_matches(pattern, database):
                have |= privs
        return have

    def on_table(self, schema: str, table: str) -> set[str]:
        return self.on_database(schema) | self.tables.get((schema, table), set())


_ALL = ("SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "REFERENCES", "INDEX",
        "ALTER", "CREATE TEMPORARY TABLES", "LOCK TABLES", "EXECUTE", "CREATE VIEW",
        "SHOW VIEW", "CREATE ROUTINE", "ALTER ROUTINE", "EVENT", "TRIGGER", "DELETE HISTORY",
        "SHOW_ROUTINE")
_GRANT = re.compile(r"^GRANT (.+?) ON (?:(?:PROCEDURE|FUNCTION) )?(\*|`(?:[^`]|``)*`|\w+)"
                    r"\.(\*|`(?:[^`]|``)*`|\w+) TO ", re.S)


def _unquote(name: str) -> str:
    return name[1:-1].replace("``", "`") if name.startswith("`") else name


def parse_grant(line: str) -> tuple[set[str], str, str] | None:
    """(privileges, schema, table) of a `SHOW GRANTS` line; None for role grants and
    anything else. `ALL PRIVILEGES` expands; column-level privileges are dropped."""
    match = _GRANT.match(line)
    if not match:
        return None
    privs: set[str] = set()
    for part in _split_privileges(match.group(1)):
        if "(" in part:
            continue  # column-level: not enough for whole-table work
        name = part.strip().upper()
        if name in ("ALL", "ALL PRIVILEGES"):
            privs.update(_ALL)
        elif name != "USAGE":
            privs.add(name)
    return privs, _unquote(match.group(2)), _unquote(match.group(3))


def _split_privileges(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for ch in text:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


def schema_matches(pattern: str, database: str) -> bool:
    """Database-level grants may use LIKE wildcards ('shop\\_%'); escaped ones are literal."""
    regex, i = "", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, database) is not None


def grants_from_lines(lines: Iterable[str]) -> Grants:
    grants = Grants()
    for line in lines:
        parsed = parse_grant(line)
        if parsed:
            grants.add(*parsed)
    return grants


def effective_grants(session: Session) -> Grants:
    """The session's effective grants: its own and those of its active roles."""
    if session.server.flavor == "mysql":
        roles = session.scalar("SELECT CURRENT_ROLE()") or "NONE"
        sql = "SHOW GRANTS" if roles == "NONE" else (
            f"SHOW GRANTS FOR CURRENT_USER() USING {roles}")
        return grants_from_lines(r[0] for r in session.query(sql))
    return grants_from_lines(r[0] for r in session.query("SHOW GRANTS"))


def missing(required_: Sequence[Requirement], have: Grants,
            database: str) -> list[Requirement]:
    """Requirements the grants do not meet."""
    on_db = have.on_database(database)
    out = []
    for r in required_:
        if r.on == "database":
            ok = r.privilege in on_db
        elif r.on == "global":
            ok = r.privilege in have.global_
        else:
            schema, _, table = r.on.partition(".")
            ok = r.privilege in have.on_table(schema, table)
        if not ok:
            out.append(r)
    return out


def grant_statements(missing_: Sequence[Requirement], database: str, user: str) -> str:
    """The GRANT statements that would fix `missing_`, each ending in ';', joined by a
    space: SQL a user can paste as it is (`user` as CURRENT_USER() gives it)."""
    who = sql_account(user)
    on_db = [r.privilege for r in missing_ if r.on == "database"]
    out = [f"GRANT {', '.join(on_db)} ON {quote(database)}.* TO {who};"] if on_db else []
    out += [f"GRANT {r.privilege} ON {'*.*' if r.on == 'global' else r.on} TO {who};"
            for r in missing_ if r.on != "database"]
    return " ".join(out)


def sql_account(current_user: str) -> str:
    """`user@host` as CURRENT_USER() gives it, as SQL: `'user'@'host'`, quotes escaped."""
    name, _, host = current_user.rpartition("@")
    return f"{sql_string(name)}@{sql_string(host or '%')}"


def sql_string(text: str) -> str:
    """A single-quoted SQL string literal (backslash and quote escaped)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def missing_for(session: Session, command: str) -> list[Requirement]:
    """What the session's account lacks on its database for a writing `command` (a key of
    the target table above); empty when the grants cannot be read, so that an account
    whose grants this parser does not understand is not refused on a guess."""
    need = [Requirement(p, "database", (command,)) for p in _TARGET_COMMANDS.get(command, ())]
    try:
        have = effective_grants(session)
    except Exception:  # noqa: BLE001 - an unreadable grant list is not a refusal
        return []
    if not (have.global_ or have.databases or have.tables):
        return []
    return missing(need, have, session.env.database)
