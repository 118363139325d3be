"""Fixtures: one pair of throwaway servers per test session, one database pair per test."""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Servers, TestEnv, start_servers


@pytest.fixture(scope="session")
def servers() -> Servers:
    """The source and target servers: $DUMPLOAD_TEST_*_PORT, else `scripts/sandbox start`."""
    return start_servers()


@pytest.fixture
def env(servers: Servers, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[TestEnv]:
    """A fresh database of the same name on source and target, dropped after the test."""
    stem = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:40].strip("_")
    database = f"t_{stem}_{uuid.uuid4().hex[:6]}"
    for server in (servers.source, servers.target):
        server.sql(None, f"CREATE DATABASE `{database}`")
    test_env = TestEnv(servers, database, tmp_path, tmp_path / "config.json")
    test_env.write_config()
    yield test_env
    for server in (servers.source, servers.target):
        # A test that stopped a server must not fail the next one.
        with contextlib.suppress(Exception):
            server.sql(None, f"DROP DATABASE IF EXISTS `{database}`")
