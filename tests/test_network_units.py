"""Wire compression: the choice from literal version strings, the config key, the ratio.

No server: `choose_compression` and its helpers are pure; the real clients and servers are
exercised in test_network_link.py (behind a shaped link) and test_network_wire.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpload.cli import cli
from dumpload.config import load_config
from dumpload.data.engine import TableResult
from dumpload.errors import ConfigError
from dumpload.tools import (
    CLIENT_COMPRESS,
    CLIENT_ZSTD,
    choose_compression,
    client_algorithms,
    is_local,
    server_algorithms,
)

MARIADB_10 = ("mariadb  Ver 15.1 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64) "
              "using  EditLine wrapper")
MARIADB_11 = ("mariadb from 11.4.2-MariaDB, client 15.2 for debian-linux-gnu (x86_64) "
              "using  EditLine wrapper")
MARIADB_DUMP = "mariadb-dump  Ver 10.19 Distrib 10.11.19-MariaDB, for debian-linux-gnu (x86_64)"
MYSQL_84 = "mysql  Ver 8.4.3 for Linux on x86_64 (MySQL Community Server - GPL)"
MYSQLDUMP_8036 = "mysqldump  Ver 8.0.36 for Linux on x86_64 (MySQL Community Server - GPL)"
MYSQL_8017 = "mysql  Ver 8.0.17 for Linux on x86_64 (MySQL Community Server - GPL)"
MYSQL_57 = "mysql  Ver 14.14 Distrib 5.7.44, for Linux (x86_64) using  EditLine wrapper"
MYSQLDUMP_57 = "mysqldump  Ver 10.13 Distrib 5.7.44, for Linux (x86_64)"


@pytest.mark.parametrize(("line", "expected"), [
    (MARIADB_10, ("zlib",)), (MARIADB_11, ("zlib",)), (MARIADB_DUMP, ("zlib",)),
    (MYSQL_84, ("zstd", "zlib")), (MYSQLDUMP_8036, ("zstd", "zlib")),
    (MYSQL_8017, ("zlib",)), (MYSQL_57, ("zlib",)), (MYSQLDUMP_57, ("zlib",)),
])
def test_client_algorithms_from_version_lines(line: str, expected: tuple[str, ...]) -> None:
    assert client_algorithms(line) == expected


@pytest.mark.parametrize(("version", "caps", "expected"), [
    ("10.11.19-MariaDB-0+deb12u1", None, ("zlib",)),
    ("11.4.2-MariaDB-log", CLIENT_COMPRESS | CLIENT_ZSTD, ("zlib",)),  # MariaDB never zstd
    ("8.4.3", None, ("zstd", "zlib")),
    ("8.0.18", CLIENT_COMPRESS | CLIENT_ZSTD, ("zstd", "zlib")),
    ("8.0.36", CLIENT_COMPRESS, ("zlib",)),         # protocol_compression_algorithms=zlib,...
    ("8.0.36", CLIENT_ZSTD, ("zstd",)),
    ("8.0.17-log", None, ("zlib",)),
    ("5.7.44", None, ("zlib",)),
    ("10.11.19-MariaDB", 0, ()),                    # built without zlib
])
def test_server_algorithms(version: str, caps: int | None, expected: tuple[str, ...]) -> None:
    assert server_algorithms(version, caps) == expected


def test_mysql_on_both_sides_uses_zstd_at_level_3() -> None:
    choice = choose_compression("auto", False, MYSQL_84, "8.4.3")
    assert choice.algorithm == "zstd"
    assert choice.args == ("--compression-algorithms=zstd", "--zstd-compression-level=3")


def test_mariadb_uses_zlib_through_compress() -> None:
    choice = choose_compression("on", False, MARIADB_10, "10.11.19-MariaDB-0+deb12u1")
    assert (choice.algorithm, choice.args) == ("zlib", ("--compress",))


def test_a_zstd_client_falls_back_to_zlib_where_the_server_cannot_zstd() -> None:
    for server, caps in (("10.11.19-MariaDB", None), ("8.0.17", None),
                         ("8.0.36", CLIENT_COMPRESS)):
        choice = choose_compression("on", False, MYSQL_84, server, caps)
        assert (choice.algorithm, choice.args) == ("zlib", ("--compression-algorithms=zlib",))
        assert "8.0.18" in choice.reason


def test_old_mysql_client_uses_compress_even_against_a_zstd_server() -> None:
    choice = choose_compression("on", False, MYSQL_57, "8.4.3")
    assert (choice.algorithm, choice.args) == ("zlib", ("--compress",))


def test_auto_is_off_on_loopback_and_off_is_off() -> None:
    assert choose_compression("auto", True, MARIADB_10, "10.11.19-MariaDB").args == ()
    assert choose_compression("off", False, MYSQL_84, "8.4.3").args == ()
    # `on` compresses even on loopback
    assert choose_compression("on", True, MARIADB_10, "10.11.19-MariaDB").args == ("--compress",)


def test_on_is_refused_when_nothing_can_compress_auto_falls_back() -> None:
    with pytest.raises(ConfigError) as info:
        choose_compression("on", False, MARIADB_10, "10.11.19-MariaDB", 0,
                           key="databases.production.compress")
    assert "databases.production.compress" in str(info.value)
    assert info.value.exit_code == 3 and "auto" in (info.value.hint or "")
    # a MariaDB client (zlib only) and a MySQL server allowing zstd only: nothing shared
    with pytest.raises(ConfigError):
        choose_compression("on", False, MARIADB_10, "8.4.3", CLIENT_ZSTD)
    fallback = choose_compression("auto", False, MARIADB_10, "8.4.3", CLIENT_ZSTD)
    assert fallback.algorithm is None and fallback.args == () and "zstd" in fallback.reason


@pytest.mark.parametrize(("host", "socket", "local"), [
    ("127.0.0.1", None, True), ("127.0.1.1", None, True), ("::1", None, True),
    ("[::1]", None, True), ("localhost", None, True), ("db1.internal", "/run/mysqld.sock", True),
    ("10.1.2.3", None, False), ("192.0.2.10", None, False), ("2001:db8::1", None, False),
])
def test_is_local(host: str, socket: str | None, local: bool) -> None:
    assert is_local(host, socket) is local


def _config(tmp_path: Path, compress: object) -> Path:
    entry = {"host": "10.1.2.3", "user": "u", "password": "p", "database": "shop"}
    doc = {"databases": {"a": {**entry, "compress": compress}, "b": {**entry, "port": 3307}},
           "replication": {"source": "a", "target": "b"}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("value", ["auto", "on", "off"])
def test_compress_values_are_accepted_and_shown(tmp_path: Path, value: str) -> None:
    path = _config(tmp_path, value)
    config = load_config(path)
    assert config.env("a").compress == value and config.env("b").compress == "auto"
    shown = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert shown.exit_code == 0, shown.output
    assert f'"compress": "{value}"' in shown.output


@pytest.mark.parametrize("value", ["yes", "zstd", True, 1])
def test_bad_compress_is_exit_3_naming_the_key(tmp_path: Path, value: object) -> None:
    path = _config(tmp_path, value)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert "databases.a.compress" in str(info.value) and str(path) in str(info.value)
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 3


def test_compression_ratio() -> None:
    result = TableResult("t", rows=10, bytes=9000, target_wire_bytes=3000)
    assert result.compression_ratio == 3.0
    assert result.to_dict()["compression_ratio"] == 3.0
    assert TableResult("t").compression_ratio is None
