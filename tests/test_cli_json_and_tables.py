"""One CLI contract across every command, against the real servers:

- `--tables` or a configured glob that matches nothing is exit 2, naming the pattern and
  listing the tables there are, and nothing is written;
- every `--json` command prints exactly one JSON document on stdout, on success and on
  failure (`{"error", "exit_code", "hint"}`), and no human table there;
- errors are printed once.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from tests.support import TestEnv, schema_digest, table_digest


def drift(env: TestEnv) -> None:
    env.src("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20), w INT NULL)",
            "INSERT INTO a SELECT seq, CONCAT('v', seq), seq FROM seq_1_to_100",
            "CREATE TABLE b (id INT PRIMARY KEY)", "INSERT INTO b VALUES (1), (2)")
    env.dst("CREATE TABLE a (id INT PRIMARY KEY, v VARCHAR(20))",
            "INSERT INTO a (id, v) SELECT seq, 'old' FROM seq_1_to_50",
            "CREATE TABLE b (id INT PRIMARY KEY)")
    env.write_config(data_tables=["a", "b"])


def state(env: TestEnv) -> Any:
    return (schema_digest(env.target, env.database),
            table_digest(env.target, env.database, "a"), sorted(p.name for p in (
                env.folder / "backups").rglob("*")) if (env.folder / "backups").exists() else [])


def one_document(result: Any) -> Any:
    """stdout is exactly one JSON document (json.loads refuses anything after it)."""
    assert result.stdout.strip(), result.stderr
    return json.loads(result.stdout)


# Commands given --tables 'nope*'; each must refuse with exit 2 before writing.
NO_MATCH = [
    ("analyze",), ("analyze", "--json"), ("structure", "--yes"), ("structure", "--dry-run"),
    ("data", "--yes"), ("data", "--dry-run", "--json"), ("sync", "--yes"),
    ("sync", "--dry-run", "--json"), ("verify",), ("verify", "--json"),
    ("backup", "create", "--env", "production"), ("backup", "create", "--env", "production",
                                                  "--json"),
    ("backup", "restore", "latest", "--env", "production", "--yes"),
    ("backup", "restore", "latest", "--env", "production", "--dry-run", "--json"),
    ("export", "--env", "development", "--out", "{out}"),
    ("export", "--env", "development", "--out", "{out}", "--json"),
]


def test_tables_matching_nothing_is_exit_2_for_every_command(env: TestEnv) -> None:
    drift(env)
    assert env.run("backup", "create", "--env", "production").exit_code == 0
    before = state(env)
    for args in NO_MATCH:
        args = tuple(a.format(out=env.folder / "export") for a in args)
        result = env.run(*args, "--tables", "nope*")
        assert result.exit_code == 2, (args, result.stdout + result.stderr)
        assert "no table matches 'nope*'; tables on " in result.stderr, (args, result.stderr)
        assert result.stderr.count("error:") == 1
        listed = result.stderr.split("tables on ", 1)[1]
        assert "a, b" in listed or "a, " in listed, (args, listed)
        if "--json" in args:
            doc = one_document(result)
            assert doc["exit_code"] == 2 and "nope*" in doc["error"], args
    assert state(env) == before
    assert not (env.folder / "export").exists()


@pytest.mark.parametrize(("key", "args"), [
    ("data_tables", ("data", "--yes")), ("data_tables", ("sync", "--yes")),
    ("data_tables", ("verify",)), ("data_tables", ("export", "--env", "development", "--out",
                                                   "x")),
    ("structure_tables", ("analyze",)), ("structure_tables", ("structure", "--yes")),
    ("structure_tables", ("sync", "--dry-run")),
])
def test_a_configured_glob_matching_nothing_is_exit_2(env: TestEnv, key: str,
                                                      args: tuple[str, ...]) -> None:
    drift(env)
    env.write_config(**{key: ["a", "settings_*"]})
    before = state(env)
    result = env.run(*args)
    assert result.exit_code == 2, result.stdout + result.stderr
    assert "no table matches 'settings_*'; tables on " in result.stderr
    assert state(env) == before


def test_excluded_tables_do_not_count_as_a_match(env: TestEnv) -> None:
    drift(env)
    env.write_config(exclude_tables=["b"])
    result = env.run("verify", "--tables", "b")
    assert result.exit_code == 2 and "excluded" in result.stderr


def test_data_with_no_data_tables_configured_is_exit_2(env: TestEnv) -> None:
    drift(env)
    env.write_config(data_tables=[])
    result = env.run("data", "--yes")
    assert result.exit_code == 2 and "data_tables" in result.stderr


def test_the_table_list_in_the_message_is_truncated(env: TestEnv) -> None:
    env.src(*[f"CREATE TABLE t{i:02d} (id INT)" for i in range(30)])
    result = env.run("backup", "create", "--env", "development", "--tables", "x")
    assert result.exit_code == 2
    assert "t00, t01" in result.stderr and "t29" not in result.stderr and "…" in result.stderr


def test_every_json_command_prints_one_document(env: TestEnv) -> None:
    drift(env)
    out = env.folder / "export"
    # (args, allowed exit codes): on failure the document is the error one.
    failures = [
        (("sync", "--json"), 2),                      # no terminal, no --yes
        (("doctor", "--env", "nope", "--json"), 3),
        (("tables", "--env", "nope", "--json"), 3),
        (("analyze", "--from", "nope", "--json"), 3),
        (("verify", "--to", "nope", "--json"), 3),
        (("data", "--from", "nope", "--json"), 3),
        (("backup", "create", "--env", "nope", "--json"), 3),
        (("backup", "list", "--env", "nope", "--json"), 3),
        (("backup", "verify", "nosuch", "--env", "production", "--json"), 7),
        (("backup", "prune", "--env", "nope", "--json"), 3),
        (("backup", "restore", "nosuch", "--env", "production", "--yes", "--json"), 7),
        (("rollback", "--yes", "--json"), 2),         # no run yet
        (("export", "--env", "development", "--json"), 2),  # --out missing (click)
        (("backup", "list", "--json", "--env"), 2),   # option without its value
    ]
    for args, code in failures:
        result = env.run(*args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        doc = one_document(result)
        assert set(doc) >= {"error", "exit_code", "hint"} and doc["exit_code"] == code, args
        assert result.stderr.count("rror:") == 1, (args, result.stderr)
    successes = [
        (("doctor", "--json"), 0), (("tables", "--env", "development", "--json"), 0),
        (("config", "show"), 0), (("analyze", "--json"), 1), (("verify", "--json"), 1),
        (("sync", "--dry-run", "--json"), 0), (("sync", "--yes", "--json"), 0),
        (("analyze", "--json"), 0), (("verify", "--json"), 0),
        (("data", "--dry-run", "--json"), 0), (("data", "--yes", "--json"), 0),
        (("backup", "create", "--env", "production", "--json"), 0),
        (("backup", "list", "--json"), 0),
        (("backup", "verify", "latest", "--env", "production", "--json"), 0),
        (("backup", "prune", "--env", "production", "--dry-run", "--json"), 0),
        (("backup", "restore", "latest", "--env", "production", "--dry-run", "--json"), 0),
        (("export", "--env", "development", "--out", str(out), "--json"), 0),
        (("rollback", "--dry-run", "--json"), 0),
    ]
    for args, code in successes:
        result = env.run(*args)
        assert result.exit_code == code, (args, result.stdout, result.stderr)
        doc = one_document(result)
        if code == 0:
            assert "error" not in doc if isinstance(doc, dict) else isinstance(doc, list), args
        elif "error" in doc:  # verify's differences: the report plus why it exits 1
            assert doc["exit_code"] == code and doc["tables"], args


def test_doctor_with_a_failed_connection_is_exit_4_with_the_checks(env: TestEnv) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    doc = json.loads(env.config_path.read_text())
    doc["databases"]["production"]["port"] = port
    doc["settings"].update(connection_timeout=1, retry_attempts=1)
    env.config_path.write_text(json.dumps(doc))
    result = env.run("doctor", "--json")
    assert result.exit_code == 4, result.stdout + result.stderr
    out = one_document(result)
    assert out["exit_code"] == 4 and out["hint"]
    failed = [c for c in out["checks"] if not c["ok"]]
    assert [c["name"] for c in failed] == ["connection"] and failed[0]["env"] == "production"
    human = env.run("doctor")
    assert human.exit_code == 4 and "✗" in human.stdout
    assert human.stderr.count("error:") == 1


def test_threads_are_bounded_by_the_servers_max_connections(env: TestEnv) -> None:
    drift(env)
    assert env.run("structure", "--yes", "--no-backup").exit_code == 0
    saved = env.target.sql(None, "SELECT @@GLOBAL.max_connections")[0][0]
    env.write_config(data_tables=["a", "b"], threads=64)
    env.target.sql(None, "SET GLOBAL max_connections = 20")
    try:
        result = env.run("data", "--yes", "--no-backup", "--json")
    finally:
        env.target.sql(None, f"SET GLOBAL max_connections = {saved}")
    assert result.exit_code == 0, result.stdout + result.stderr
    report = one_document(result)
    assert report["threads"] < 20 and "max_connections" in result.stderr
    assert table_digest(env.source, env.database, "a") == table_digest(env.target, env.database,
                                                                       "a")


def test_threads_beyond_the_cli_limit_are_a_usage_error(env: TestEnv) -> None:
    result = env.run("data", "--threads", "10000", "--yes")
    assert result.exit_code == 2 and "10000" in result.stderr
    result = env.run("data", "--threads", "0", "--yes", "--json")
    assert result.exit_code == 2 and one_document(result)["exit_code"] == 2


def test_export_into_a_file_path(env: TestEnv, tmp_path: Path) -> None:
    drift(env)
    target = tmp_path / "occupied"
    target.write_text("x")
    result = env.run("export", "--env", "development", "--out", str(target))
    assert result.exit_code == 6 and "Traceback" not in result.stderr + result.stdout
    assert result.stderr.count("error:") == 1


def test_a_bare_star_on_an_empty_database_is_not_an_error(env: TestEnv) -> None:
    env.write_config(data_tables=["*"])
    for args in (("analyze",), ("verify",), ("sync", "--yes")):
        result = env.run(*args)
        assert result.exit_code == 0, (args, result.stdout + result.stderr)
    assert env.run("analyze", "--tables", "t*").exit_code == 2
