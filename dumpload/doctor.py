"""`doctor`: can dumpload do its job with this configuration? Reads only.

Each check is a `Check` row (ok or not, what was seen, how to fix it). Privileges are the
account's effective grants (roles included) against what each command runs on an env of
that role (`dumpload.privileges`); a missing one names the commands it blocks. The
target also needs `local_infile`; both need the client binaries; the backup folder must be
writable with room to spare.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dumpload import privileges
from dumpload.config import Config, DatabaseConfig
from dumpload.db import Session, connect
from dumpload.definers import current_account, may_set_definer
from dumpload.errors import DumpLoadError
from dumpload.private import make_dirs, readable_by_others
from dumpload.tools import find_binary, wire_compression

MIN_FREE_BYTES = 1 << 30  # a backup folder with less than 1 GiB free fails the check


@dataclass(frozen=True)
class Check:
    env: str
    name: str
    ok: bool
    detail: str
    hint: str = ""
    warn: bool = False  # passed, but something deserves a fix (does not fail doctor)


def run_checks(config: Config, envs: Iterable[str]) -> list[Check]:
    """All checks for the named environments, then the backup folder."""
    checks: list[Check] = []
    for name in envs:
        checks += check_environment(config, config.env(name))
    checks.append(check_backup_dir(config.settings.backup_dir))
    for what, folder in (("backup dir", config.settings.backup_dir),
                         ("log dir", config.settings.log_dir)):
        checks.append(check_private_dir(what, folder))
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
        checks.append(check_privileges(session, role))
        if role == "target":
            checks.append(check_local_infile(session))
            checks.append(check_definers(session))
        checks += check_binaries(env.name, session.server.flavor)
        checks.append(check_compression(session))
    return checks


def check_privileges(session: Session, role: str) -> Check:
    """The account's effective grants against what each command of this role runs."""
    env = session.env
    required = privileges.required(role, session.server.flavor)
    have = privileges.effective_grants(session)
    missing = privileges.missing(required, have, env.database)
    if not missing:
        return Check(env.name, "privileges", True,
                     ", ".join(str(r) for r in required) + f" ({role})")
    detail = "; ".join(f"missing {r} (blocks: {', '.join(r.commands)})" for r in missing)
    user = session.scalar("SELECT CURRENT_USER()")
    # The fix column is SQL to paste as it is; the alternative goes with the detail.
    return Check(env.name, "privileges", False,
                 detail + " (a role active by default that holds them also does)",
                 privileges.grant_statements(missing, env.database, user))


def check_definers(session: Session) -> Check:
    """Objects on the target defined by another account: fine (dumpload recreates them as
    this account), unless `--keep-definer` is used without the privilege to keep them."""
    account = current_account(session)
    rows = session.query(
        "SELECT CONCAT(LOWER(kind), ' ', name), who FROM ("
        "SELECT 'TRIGGER' kind, TRIGGER_NAME name, DEFINER who FROM information_schema.TRIGGERS "
        "WHERE TRIGGER_SCHEMA = DATABASE() UNION ALL SELECT 'VIEW', TABLE_NAME, DEFINER "
        "FROM information_schema.VIEWS WHERE TABLE_SCHEMA = DATABASE() UNION ALL SELECT "
        "ROUTINE_TYPE, ROUTINE_NAME, DEFINER FROM information_schema.ROUTINES "
        "WHERE ROUTINE_SCHEMA = DATABASE()) o WHERE who <> %s ORDER BY 1", (account,))
    if not rows:
        return Check(session.env.name, "definers", True, f"every object is defined by {account}")
    listed = ", ".join(f"{r[0]} ({r[1]})" for r in rows[:5]) + (" …" if len(rows) > 5 else "")
    if may_set_definer(session):
        return Check(session.env.name, "definers", True,
                     f"{len(rows)} object(s) of other accounts, which {account} may keep: {listed}")
    return Check(session.env.name, "definers", True,
                 f"{len(rows)} object(s) of other accounts ({listed}): recreated as {account}; "
                 "--keep-definer would be refused (needs SUPER or SET USER)")


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


def check_compression(session: Session) -> Check:
    """What the native clients will use on the wire to this server (`compress`)."""
    env = session.env
    try:
        binary = find_binary("client", session.server.flavor)
        choice = wire_compression(env, binary, session.server.version_string,
                                  session.server.capabilities)
    except DumpLoadError as exc:
        return Check(env.name, "wire compression", False, exc.message, exc.hint or "")
    args = f" {' '.join(choice.args)}" if choice.args else ""
    return Check(env.name, "wire compression", True, f"{choice}{args}")


def check_backup_dir(folder: Path) -> Check:
    try:
        make_dirs(folder)
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


def check_private_dir(what: str, folder: Path) -> Check:
    """Backups and logs hold row data: warn (not fail) when others may read their folder.

    dumpload creates its folders 0700 but never changes the mode of one that exists."""
    if not folder.is_dir():
        return Check("-", f"{what} access", True, f"{folder}: created 0700 when first used")
    mode = folder.stat().st_mode & 0o777
    if readable_by_others(folder):
        return Check("-", f"{what} access", True,
                     f"{folder}: mode {mode:o}, readable by other users (its files are 0600)",
                     f"chmod 700 {shlex.quote(str(folder))}", warn=True)
    return Check("-", f"{what} access", True, f"{folder}: mode {mode:o}, private")
