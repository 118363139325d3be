"""Across a shaped link: a copy, a backup and a restore through compressed protocols.

One sandbox per test session (`scripts/sandbox start --link 100mbit`): both servers in a
network namespace of their own, the target's port behind HTB at 100 Mbit/s each way.
dumpload runs inside the namespace (`ip netns exec`), its config says `compress: on` for
the target; the test itself reaches the servers through their unix sockets (unshaped) to
build data and to take the independent digests of tests/support.py.

Skipped, with the reason, where network namespaces cannot be created (not root, no
CAP_SYS_ADMIN, no iproute2 and no apt).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    SANDBOX,
    Server,
    Servers,
    TestEnv,
    dumpload_command,
    make_config,
    schema_digest,
)

RATE = "100mbit"
ROWS = 20_000


@dataclass(frozen=True)
class Link:
    servers: Servers
    netns: str


def _link_dir() -> str:
    base = os.environ.get("DUMPLOAD_TEST_SANDBOX", "/tmp/dumpload-test-sandbox")
    return os.environ.get("DUMPLOAD_TEST_LINK_SANDBOX") or base.rstrip("/") + "-link"


@pytest.fixture(scope="session")
def link() -> Iterator[Link]:
    if os.geteuid() != 0:
        pytest.skip("a shaped link needs `ip netns` and `tc`, which need root")
    folder = _link_dir()
    proc = subprocess.run([sys.executable, str(SANDBOX), "start", "--dir", folder,
                           "--link", RATE], capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        if any(w in proc.stderr for w in ("netns", "not permitted", "tc ", "iproute2")):
            pytest.skip(f"cannot build a shaped link here: {proc.stderr.strip()[-300:]}")
        pytest.fail(f"sandbox start --link failed: {proc.stderr[-2000:]}")
    info = json.loads((Path(folder) / "sandbox.json").read_text())
    servers = Servers(*(Server(role, info[role]["host"], int(info[role]["port"]),
                               info[role]["datadir"], info[role]["socket"])
                        for role in ("source", "target")), sandbox_dir=folder)
    yield Link(servers, info["link"]["netns"])
    # Stopped even under DUMPLOAD_KEEP_SANDBOX: a kept link sandbox (two more servers and a
    # namespace) would outlive a `sandbox stop` of the main one, which is all users run.
    subprocess.run([sys.executable, str(SANDBOX), "stop", "--dir", folder],
                   capture_output=True, timeout=120)


@pytest.fixture
def link_env(link: Link, tmp_path: Path) -> Iterator[TestEnv]:
    database = f"t_link_{uuid.uuid4().hex[:8]}"
    for server in (link.servers.source, link.servers.target):
        server.sql(None, f"CREATE DATABASE `{database}`")
    env = TestEnv(link.servers, database, tmp_path, tmp_path / "config.json")
    write_config(env, "on")
    yield env
    for server in (link.servers.source, link.servers.target):
        with contextlib.suppress(Exception):
            server.sql(None, f"DROP DATABASE IF EXISTS `{database}`")


def write_config(env: TestEnv, compress: str) -> None:
    doc = make_config(env.servers, env.database)
    doc["databases"]["production"]["compress"] = compress
    env.config_path.write_text(json.dumps(doc, indent=2))


def run_inside(link: Link, env: TestEnv, *args: str) -> subprocess.CompletedProcess[str]:
    """The dumpload command inside the namespace, where the servers' TCP ports are."""
    return subprocess.run(["ip", "netns", "exec", link.netns, dumpload_command(),
                           "--config", str(env.config_path), *args],
                          capture_output=True, text=True, timeout=300)


DDL = ("CREATE TABLE docs (id INT PRIMARY KEY, kind VARCHAR(20) NOT NULL, body TEXT, "
       "amount DECIMAL(12,2), created DATETIME(6), token VARBINARY(16), note VARCHAR(40) NULL, "
       "KEY (kind))",
       "CREATE TABLE tags (doc_id INT NOT NULL, tag VARCHAR(30) NOT NULL)")


def fill(env: TestEnv, server: Server, seed: int) -> None:
    """Compressible, varied rows: text, decimals, binary bytes, NULLs, a keyless table."""
    server.sql(env.database, *DDL,
               "INSERT INTO docs SELECT seq, ELT(1 + seq % 4, 'memo', 'invoice', 'note', "
               f"'report'), REPEAT(CONCAT('line ', seq % 97, ' of document {seed}; '), 6), "
               "seq * 1.25, '2024-01-01' + INTERVAL seq SECOND, UNHEX(MD5(seq)), "
               f"IF(seq % 7 = 0, NULL, CONCAT('n', seq)) FROM seq_1_to_{ROWS}",
               "INSERT INTO tags SELECT seq % 5000, CONCAT('tag-', seq % 13) FROM seq_1_to_8000")


def spawned(env: TestEnv) -> list[str]:
    """The native clients' command lines from the run logs ("spawn <what>: <argv>")."""
    return [line.split("spawn ", 1)[1] for log in sorted((env.folder / "logs").glob(
        "replicator_*.log")) for line in log.read_text().splitlines() if " spawn " in line]


def shaped_bytes(link: Link) -> int:
    """Bytes the HTB class towards the target server has passed so far."""
    out = subprocess.run(["ip", "netns", "exec", link.netns, "tc", "-s", "class", "show",
                          "dev", "lo", "classid", "1:10"], capture_output=True, text=True,
                         check=True).stdout
    return int(re.search(r"Sent (\d+) bytes", out).group(1))  # type: ignore[union-attr]


def global_status(server: Server, name: str) -> int:
    return int(server.sql(None, f"SHOW GLOBAL STATUS LIKE '{name}'")[0][1])


def test_copy_through_the_link_is_exact_and_compressed(link: Link, link_env: TestEnv) -> None:
    fill(link_env, link.servers.source, 1)
    link_env.target.sql(link_env.database, *DDL, "INSERT INTO docs (id, kind) VALUES (1, 'x')")
    shaped = shaped_bytes(link)
    result = run_inside(link, link_env, "data", "--yes", "--json", "--no-backup")
    assert result.returncode == 0, result.stderr
    shaped = shaped_bytes(link) - shaped
    report = json.loads(result.stdout)
    docs = next(t for t in report["tables"] if t["table"] == "docs")
    assert schema_digest(link.servers.source, link_env.database) == \
        schema_digest(link.servers.target, link_env.database)
    # The target received fewer bytes than were read; the source (auto, loopback: not
    # compressed) sent about as many.
    assert 0 < docs["target_wire_bytes"] < docs["bytes"] / 3, docs
    assert docs["compression_ratio"] > 3
    assert docs["source_wire_bytes"] > 0.9 * docs["bytes"], docs
    # ... and all of it went through the shaped class (TCP/IP headers on top).
    assert shaped >= sum(t["target_wire_bytes"] for t in report["tables"])
    loads = [c for c in spawned(link_env) if c.startswith("load of")]
    readers = [c for c in spawned(link_env) if c.startswith("source reader")]
    assert loads and all("--compress" in c for c in loads)
    assert readers and not any("--compress" in c for c in readers)
    metrics = [json.loads(line) for line in
               (link_env.folder / "logs" / "performance_metrics.log").read_text().splitlines()]
    docs_metrics = next(m for m in metrics if m.get("table") == "docs")
    assert docs_metrics["target_wire_bytes"] == docs["target_wire_bytes"]
    assert docs_metrics["compression_ratio"] == docs["compression_ratio"]

    # The same copy with `compress: off`: the wire carries at least what was read.
    link_env.target.sql(link_env.database, "DELETE FROM docs WHERE id % 2 = 0")
    write_config(link_env, "off")
    result = run_inside(link, link_env, "data", "--yes", "--json", "--no-backup")
    assert result.returncode == 0, result.stderr
    docs = next(t for t in json.loads(result.stdout)["tables"] if t["table"] == "docs")
    assert docs["target_wire_bytes"] >= docs["bytes"], docs
    assert schema_digest(link.servers.source, link_env.database) == \
        schema_digest(link.servers.target, link_env.database)


def test_backup_and_restore_through_the_link(link: Link, link_env: TestEnv) -> None:
    target = link.servers.target
    fill(link_env, target, 2)
    before = schema_digest(target, link_env.database)
    sent = global_status(target, "Bytes_sent")
    created = run_inside(link, link_env, "backup", "create", "--env", "production", "--json")
    assert created.returncode == 0, created.stderr
    dumped = global_status(target, "Bytes_sent") - sent
    info: dict[str, Any] = json.loads(created.stdout)
    # What left the target while the dump ran, all connections counted, is far less than
    # the dump's own size: the dump tool's protocol was compressed.
    assert dumped < info["uncompressed_size"] / 2, (dumped, info["uncompressed_size"])

    target.sql(link_env.database, "DELETE FROM docs WHERE id % 3 = 0",
               "UPDATE docs SET body = 'changed' WHERE id < 100", "DELETE FROM tags")
    assert schema_digest(target, link_env.database) != before
    received = global_status(target, "Bytes_received")
    restored = run_inside(link, link_env, "backup", "restore", info["id"], "--env",
                          "production", "--yes", "--no-backup", "--json")
    assert restored.returncode == 0, restored.stderr
    assert global_status(target, "Bytes_received") - received < info["uncompressed_size"] / 2
    assert schema_digest(target, link_env.database) == before
    dumps = [c for c in spawned(link_env) if "-dump" in c.split(":", 1)[0]]
    clients = [c for c in spawned(link_env) if "restoring" in c.split(":", 1)[0]]
    assert dumps and all("--compress" in c for c in dumps)
    assert clients and all("--compress" in c for c in clients)
