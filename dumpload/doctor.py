"""`doctor`: can dumpload do its job with this configuration? Reads only.

Each check is a `Check` row (ok or not, what was seen, how to fix it). The source needs
read privileges; the target needs write privileges and `local_infile`; both need the
client binaries; the backup folder must be writable with room to spare.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dumpload.config import Config, DatabaseConfig
from dumpload.db import Session, connect
from dumpload.errors import DumpLoadError
from dumpload.sqltext import quote
from dumpload.tools import find_binary

SOURCE_PRIVILEGES = ("SELECT", "SHOW VIEW", "TRIGGER", "LOCK TABLES")
TARGET_PRIVILEGES = ("SELECT", "CREATE", "ALTER", "DROP", "INSERT", "DELETE", "INDEX",
                     "REFERENCES", "TRIGGER", "CREATE VIEW")
MIN_FREE_BYTES = 1 << 30  # a backup folder with less than 1 GiB free fails the check


@dataclass(frozen=True)
class Check:
    env: str
    name: str
    ok: bool
    detail: str
    hint: str = ""


def run_checks(config: Config, envs: Iterable[str]) -> list[Check]:
    """All checks for the named environments, then the backup folder."""
    checks: list[Check] = []
    for name in envs:
        checks += check_environment(config, config.env(name))
    checks.append(check_backup_dir(config.settings.backup_dir))
    return checks


def _role(config: Config, env: DatabaseConfig) -> str:
    if env.name == config.replication.target:
        return "target"
    return "source" if env.name == config.replication.source else "other"


def check_environment(config: Config, env: DatabaseConfig) -> list[Check]:
    role = _role(config, env)
    try:
        session = connect(env, config.settings)
    except DumpLoadError as exc:
        return [Check(env.name, "connection", False, exc.message, exc.hint or "")]
    with session:
        checks = [Check(env.name, "connection", True,
                        f"{env.user}@{env.address}/{env.database} ({role})"),
                  Check(env.name, "server", True, session.server.version_string)]
        wanted = TARGET_PRIVILEGES if role == "target" else SOURCE_PRIVILEGES
        checks.append(check_privileges(session, wanted))
        if role == "target":
            checks.append(check_local_infile(session))
        checks += check_binaries(env.name, session.server.flavor)
    return checks


def granted_privileges(session: Session) -> set[str]:
    """Privileges of the current account that apply to its configured database."""
    user = session.scalar("SELECT CURRENT_USER()")
    name, _, host = user.rpartition("@")
    grantee = f"'{name}'@'{host}'"
    privs = {r[0] for r in session.query(
        "SELECT PRIVILEGE_TYPE FROM information_schema.USER_PRIVILEGES WHERE GRANTEE = %s",
        (grantee,))}
    for schema, priv in session.query(
            "SELECT TABLE_SCHEMA, PRIVILEGE_TYPE FROM information_schema.SCHEMA_PRIVILEGES "
            "WHERE GRANTEE = %s", (grantee,)):
        if _schema_matches(schema, session.env.database):
            privs.add(priv)
    return privs


def _schema_matches(pattern: str, database: str) -> bool:
    # Schema grants may use LIKE wildcards ('shop\_%'); escaped ones are literal.
    regex = ""
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            regex += re.escape(pattern[i + 1])
            i += 2
            continue
        regex += ".*" if ch == "%" else "." if ch == "_" else re.escape(ch)
        i += 1
    return re.fullmatch(regex, database) is not None


def check_privileges(session: Session, wanted: Iterable[str]) -> Check:
    have = granted_privileges(session)
    missing = [p for p in wanted if p not in have]
    env = session.env
    if not missing:
        return Check(env.name, "privileges", True, ", ".join(wanted))
    account = sql_account(session.scalar("SELECT CURRENT_USER()"))
    return Check(env.name, "privileges", False,
                 f"missing: {', '.join(missing)} (a role active by default also does)",
                 f"GRANT {', '.join(missing)} ON {quote(env.database)}.* TO {account};")


def sql_account(current_user: str) -> str:
    """`user@host` as CURRENT_USER() gives it, as SQL: `'user'@'host'`, quotes escaped."""
    name, _, host = current_user.rpartition("@")
    return f"{sql_string(name)}@{sql_string(host or '%')}"


def sql_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def check_local_infile(session: Session) -> Check:
    on = bool(int(session.scalar("SELECT @@GLOBAL.local_infile")))
    if on:
        return Check(session.env.name, "local_infile", True, "ON")
    return Check(session.env.name, "local_infile", False, "OFF: data loads need LOAD DATA LOCAL",
                 "SET GLOBAL local_infile = ON;\n# and in the server's my.cnf, to survive a "
                 "restart:\n[mysqld]\nlocal_infile = ON")


def check_binaries(env: str, flavor: str) -> list[Check]:
    out = []
    for kind in ("dump", "client"):
        try:
            binary = find_binary(kind, flavor)
            out.append(Check(env, f"{kind} tool", True, f"{binary.path} ({binary.short_version})"))
        except DumpLoadError as exc:
            out.append(Check(env, f"{kind} tool", False, exc.message, exc.hint or ""))
    return out


def check_backup_dir(folder: Path) -> Check:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".doctor-"):
            pass
    except OSError as exc:
        return Check("-", "backup dir", False, f"{folder}: not writable ({exc.strerror})",
                     f"create {folder} and make it writable by {os.environ.get('USER', 'you')}, "
                     "or set settings.backup_dir")
    free = shutil.disk_usage(folder).free
    detail = f"{folder}: writable, {free / (1 << 30):.1f} GiB free"
    if free < MIN_FREE_BYTES:
        return Check("-", "backup dir", False, detail, "free space, or point settings.backup_dir "
                     "at a larger filesystem")
    return Check("-", "backup dir", True, detail)
