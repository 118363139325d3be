"""Test support: servers, per-test databases, running the CLI, independent digests.

Nothing here uses dumpload's own code paths for what it checks: digests read rows with
plain PyMySQL so a bug in dumpload cannot hide itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parent.parent
SANDBOX = ROOT / "scripts" / "sandbox"


@dataclass(frozen=True)
class Server:
    """One test server (source or target) reached over loopback TCP as root.

    With `socket`, the test itself connects through that unix socket (a server inside a
    network namespace is reachable that way from outside it, unshaped); dumpload's config
    still points at host:port."""

    role: str
    host: str
    port: int
    datadir: str = ""
    socket: str = ""

    def connect(self, database: str | None = None, **kwargs: Any) -> pymysql.Connection:
        where: dict[str, Any] = ({"unix_socket": self.socket} if self.socket else
                                 {"host": self.host, "port": self.port})
        return pymysql.connect(**where, user="root", password="",
                               database=database, charset="utf8mb4", autocommit=True,
                               local_infile=True, **kwargs)

    def sql(self, database: str | None, *statements: str) -> list[tuple]:
        """Run statements in order; return the rows of the last one."""
        rows: list[tuple] = []
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute("SET time_zone='+00:00', sql_mode='NO_AUTO_VALUE_ON_ZERO'")
                for stmt in statements:
                    cur.execute(stmt)
                    rows = list(cur.fetchall())
        finally:
            conn.close()
        return rows


@dataclass(frozen=True)
class Servers:
    source: Server
    target: Server
    sandbox_dir: str | None = None


def start_servers() -> Servers:
    """Servers named by DUMPLOAD_TEST_SOURCE_PORT/TARGET_PORT, else the project sandbox."""
    src, dst = os.environ.get("DUMPLOAD_TEST_SOURCE_PORT"), os.environ.get(
        "DUMPLOAD_TEST_TARGET_PORT")
    if src and dst:
        host = os.environ.get("DUMPLOAD_TEST_HOST", "127.0.0.1")
        return Servers(Server("source", host, int(src)), Server("target", host, int(dst)))
    folder = os.environ.get("DUMPLOAD_TEST_SANDBOX", "/tmp/dumpload-test-sandbox")
    subprocess.run([sys.executable, str(SANDBOX), "start", "--dir", folder], check=True,
                   stdout=subprocess.DEVNULL)
    info = json.loads((Path(folder) / "sandbox.json").read_text())
    return Servers(*(Server(role, info[role]["host"], int(info[role]["port"]),
                            info[role].get("datadir", "")) for role in ("source", "target")),
                   sandbox_dir=folder)


@dataclass
class TestEnv:
    """A source and a target database of the test's own, and a config pointing at them."""

    __test__ = False  # not a test class, despite the name

    servers: Servers
    database: str
    folder: Path
    config_path: Path
    settings: dict[str, Any] = field(default_factory=dict)

    @property
    def source(self) -> Server:
        return self.servers.source

    @property
    def target(self) -> Server:
        return self.servers.target

    def src(self, *statements: str) -> list[tuple]:
        return self.source.sql(self.database, *statements)

    def dst(self, *statements: str) -> list[tuple]:
        return self.target.sql(self.database, *statements)

    def write_config(self, **overrides: Any) -> Path:
        """(Re)write the config; overrides go into 'replication' or 'settings' by key."""
        doc = make_config(self.servers, self.database)
        for key, value in overrides.items():
            section = "replication" if key in doc["replication"] else "settings"
            doc[section][key] = value
        self.config_path.write_text(json.dumps(doc, indent=2))
        return self.config_path

    def run(self, *args: str, input: str | None = None) -> Result:
        """Run the CLI in-process with click's runner (stdin is not a terminal)."""
        from dumpload.cli import cli
        return CliRunner().invoke(cli, ["--config", str(self.config_path), *args], input=input,
                                  catch_exceptions=False)

    def run_process(self, *args: str, timeout: float = 300,
                    **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run the installed `dumpload` command as a real subprocess."""
        return subprocess.run([dumpload_command(), "--config", str(self.config_path), *args],
                              capture_output=True, text=True, timeout=timeout, **kwargs)


def dumpload_command() -> str:
    exe = Path(sys.executable).parent / "dumpload"
    return str(exe) if exe.exists() else "dumpload"


def make_config(servers: Servers, database: str) -> dict[str, Any]:
    def entry(s: Server) -> dict[str, Any]:
        return {"host": s.host, "port": s.port, "user": "root", "password": "",
                "database": database}
    return {
        "databases": {"development": entry(servers.source), "production": entry(servers.target)},
        "replication": {"source": "development", "target": "production",
                        "structure_tables": ["*"], "data_tables": ["*"], "exclude_tables": []},
        "settings": {"backup_dir": "backups", "log_dir": "logs", "threads": 2,
                     "connection_timeout": 5, "retry_attempts": 2},
    }


def table_digest(server: Server, database: str, table: str,
                 order_by: Sequence[str] | None = None) -> tuple[int, str]:
    """(row count, sha256) over every column's raw bytes, NULL distinct from ''.

    Rows are sorted by their encoded form, so tables without keys compare as multisets.
    """
    conn = server.connect(database)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone='+00:00'")
            cur.execute(f"SELECT * FROM `{table.replace('`', '``')}`")
            cols = [d[0] for d in cur.description]
            q = ", ".join(f"HEX(`{c.replace('`', '``')}`)" for c in cols)
            cur.execute(f"SELECT {q} FROM `{table.replace('`', '``')}`")
            encoded = sorted(json.dumps(list(r)) for r in cur.fetchall())
    finally:
        conn.close()
    digest = hashlib.sha256("\n".join(encoded).encode()).hexdigest()
    return len(encoded), digest


def schema_digest(server: Server, database: str, tables: Iterable[str] | None = None) -> dict:
    """Table name → (count, digest) for every base table (or the given ones)."""
    names = tables or [r[0] for r in server.sql(
        None, f"SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA='{database}' "
        "AND TABLE_TYPE='BASE TABLE' ORDER BY 1")]
    return {t: table_digest(server, database, t) for t in names}


def wait_for(predicate: Callable[[], object], timeout: float = 60.0) -> None:
    """Poll `predicate` until it is true; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    raise AssertionError(f"condition not reached within {timeout} s")
