"""Bad and hostile inputs through the installed `dumpload` executable, one table per kind.

Each case writes a file (a config, a backup manifest, a run journal, an export manifest),
runs the real command in a subprocess and asserts: the documented exit code, no Python
traceback on stdout or stderr, the error printed once, and the key or file named. None of
these cases needs a server: every one must be refused before a connection is opened.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import zstandard

from tests.support import dumpload_command

DB = "shop"


def base_config() -> dict[str, Any]:
    # Port 9 (discard) on loopback: nothing below may try to connect anyway.
    def entry(name: str) -> dict[str, Any]:
        return {"host": "127.0.0.1", "port": 9, "user": name, "password": "", "database": DB}
    return {"databases": {"development": entry("dev"),
                          "production": {**entry("prod"), "host": "localhost", "port": 10}},
            "replication": {"source": "development", "target": "production",
                            "data_tables": ["t"]},
            "settings": {}}


def run(folder: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [dumpload_command(), "--config", str(config or folder / "config.json"), *args]
    env = {k: v for k, v in os.environ.items() if k != "DUMPLOAD_CONFIG"}
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd=folder, env=env)


def assert_refused(result: subprocess.CompletedProcess[str], code: int, *mentions: str) -> None:
    out = result.stdout + result.stderr
    assert result.returncode == code, out
    assert "Traceback" not in out, out
    assert result.stderr.count("error:") == 1, out  # printed once
    for word in mentions:
        assert word in result.stderr, (word, out)


# ------------------------------------------------------------------ configuration (exit 3)
def setting(key: str, value: Any) -> Callable[[dict[str, Any], Path], Any]:
    def mutate(doc: dict[str, Any], folder: Path) -> Any:
        doc["settings"][key] = value
        return doc
    return mutate


def db_key(key: str, value: Any, env: str = "production") -> Callable[[dict[str, Any], Path], Any]:
    def mutate(doc: dict[str, Any], folder: Path) -> Any:
        doc["databases"][env][key] = value
        return doc
    return mutate


def raw(content: bytes) -> Callable[[dict[str, Any], Path], Any]:
    return lambda doc, folder: content


def replace(path: tuple[str, ...], value: Any) -> Callable[[dict[str, Any], Path], Any]:
    def mutate(doc: dict[str, Any], folder: Path) -> Any:
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value
        return doc
    return mutate


def password_file(content: bytes | None, mode: int = 0o600,
                  directory: bool = False) -> Callable[[dict[str, Any], Path], Any]:
    def mutate(doc: dict[str, Any], folder: Path) -> Any:
        path = folder / "pw"
        if directory:
            path.mkdir()
        elif content is not None:
            path.write_bytes(content)
            path.chmod(mode)
        del doc["databases"]["production"]["password"]
        doc["databases"]["production"]["password_file"] = "pw"
        return doc
    return mutate


def path_setting(key: str, make: str) -> Callable[[dict[str, Any], Path], Any]:
    def mutate(doc: dict[str, Any], folder: Path) -> Any:
        target = folder / "occupied"
        if make == "file":
            target.write_text("not a folder")
        doc["settings"][key] = "occupied"
        return doc
    return mutate


def option_file(content: bytes) -> Callable[[dict[str, Any], Path], Any]:
    def mutate(doc: dict[str, Any], folder: Path) -> Any:
        (folder / "my.cnf").write_bytes(content)
        doc["databases"]["production"]["option_file"] = "my.cnf"
        return doc
    return mutate


def ssl_dir(doc: dict[str, Any], folder: Path) -> Any:
    (folder / "ca").mkdir()
    doc["databases"]["production"]["ssl_ca"] = "ca"
    return doc


CONFIG_CASES: list[tuple[str, Callable[[dict[str, Any], Path], Any], str]] = [
    ("not-utf8", raw(b'{"databases": "\xff\xfe"}'), "UTF-8"),
    ("latin1-password-in-config", raw('{"x": "caf\xe9"}'.encode("latin-1")), "UTF-8"),
    ("json-array", raw(b"[1, 2]"), "JSON object"),
    ("json-string", raw(b'"config"'), "JSON object"),
    ("json-number", raw(b"42"), "JSON object"),
    ("json-null", raw(b"null"), "JSON object"),
    ("empty", raw(b""), "empty"),
    ("whitespace-only", raw(b" \n\t\n"), "empty"),
    ("truncated", raw(b'{"databases": {'), "malformed JSON"),
    ("5000-digit-number", raw(b'{"settings": {"threads": ' + b"9" * 5000 + b"}}"),
     "config.json"),
    ("nested-100000-deep", raw(b"[" * 100000 + b"]" * 100000), "config.json"),
    ("connection_timeout-beyond-pymysql", setting("connection_timeout", 31_536_001),
     "connection_timeout"),
    ("connection_timeout-negative", setting("connection_timeout", -5), "connection_timeout"),
    ("connection_timeout-zero", setting("connection_timeout", 0), "connection_timeout"),
    ("connection_timeout-string", setting("connection_timeout", "30"), "connection_timeout"),
    ("connection_timeout-float", setting("connection_timeout", 2.5), "connection_timeout"),
    ("backup_retention_days-overflows-a-date", setting("backup_retention_days", 10**9),
     "backup_retention_days"),
    ("backup_retention_days-huge", setting("backup_retention_days", 10**30),
     "backup_retention_days"),
    ("backup_retention_days-negative", setting("backup_retention_days", -1),
     "backup_retention_days"),
    ("threads-zero", setting("threads", 0), "threads"),
    ("threads-negative", setting("threads", -4), "threads"),
    ("threads-10000", setting("threads", 10000), "threads"),
    ("threads-true", setting("threads", True), "threads"),
    ("threads-null", setting("threads", None), "threads"),
    ("threads-NaN", raw(b'{"settings": {"threads": NaN}}'), "threads"),
    ("threads-infinity", raw(b'{"settings": {"threads": Infinity}}'), "threads"),
    ("threads-1e400", raw(b'{"settings": {"threads": 1e400}}'), "threads"),
    ("batch_size-zero", setting("batch_size", 0), "batch_size"),
    ("batch_size-huge", setting("batch_size", 10**12), "batch_size"),
    ("max_backups-zero", setting("max_backups", 0), "max_backups"),
    ("max_backups-list", setting("max_backups", [50]), "max_backups"),
    ("retry_attempts-huge", setting("retry_attempts", 10**6), "retry_attempts"),
    ("compression_level-99", setting("compression_level", 99), "compression_level"),
    ("log_level-unknown", setting("log_level", "LOUD"), "log_level"),
    ("log_level-number", setting("log_level", 10), "log_level"),
    ("settings-typo", setting("thread", 4), "did you mean 'threads'"),
    ("settings-key-null", setting("backup_dir", None), "backup_dir"),
    ("settings-null", replace(("settings",), None), "settings"),
    ("settings-list", replace(("settings",), []), "settings"),
    ("backup_dir-is-a-file", path_setting("backup_dir", "file"), "backup_dir"),
    ("log_dir-is-a-file", path_setting("log_dir", "file"), "log_dir"),
    ("databases-null", replace(("databases",), None), "databases"),
    ("databases-list", replace(("databases",), ["production"]), "databases"),
    ("databases-empty", replace(("databases",), {}), "databases"),
    ("environment-null", replace(("databases", "production"), None), "databases.production"),
    ("environment-name-path", replace(("databases", "../../etc"), base_config()["databases"]
                                      ["production"]), "../../etc"),
    ("environment-name-zero-width", replace(("databases", "prod\u200b"),
                                            base_config()["databases"]["production"]),
     "not a plain name"),
    ("replication-null", replace(("replication",), None), "replication"),
    ("replication-source-null", replace(("replication", "source"), None), "replication.source"),
    ("replication-unknown-env", replace(("replication", "target"), "prodution"),
     "did you mean 'production'"),
    ("source-equals-target", replace(("replication", "target"), "development"),
     "both 'development'"),
    ("data_tables-string", replace(("replication", "data_tables"), "t"), "data_tables"),
    ("data_tables-number-item", replace(("replication", "data_tables"), [1]), "data_tables[0]"),
    ("top-level-typo", replace(("databses",), {}), "did you mean 'databases'"),
    ("port-zero", db_key("port", 0), "port"),
    ("port-70000", db_key("port", 70000), "port"),
    ("port-string", db_key("port", "3306"), "port"),
    ("port-null", db_key("port", None), "port"),
    ("port-huge", db_key("port", 10**40), "port"),
    ("host-empty", db_key("host", ""), "host"),
    ("host-nul", db_key("host", "db\x00.internal"), "NUL"),
    ("database-nul", db_key("database", "shop\x00--"), "NUL"),
    ("user-list", db_key("user", ["root"]), "user"),
    ("charset-unknown", db_key("charset", "klingon"), "charset"),
    ("ssl_verify_identity-string", db_key("ssl_verify_identity", "yes"), "ssl_verify_identity"),
    ("ssl_ca-is-a-directory", ssl_dir, "ssl_ca"),
    ("password-and-password_env", db_key("password_env", "X"), "password"),
    ("password_env-unset", lambda d, f: {**d, "databases": {**d["databases"], "production": {
        k: v for k, v in {**d["databases"]["production"],
                          "password_env": "DL_SURELY_UNSET_VAR"}.items() if k != "password"}}},
     "DL_SURELY_UNSET_VAR"),
    ("password_file-not-utf8", password_file(b"\xff\xfe\xfd"), "password_file"),
    ("password_file-is-a-directory", password_file(None, directory=True), "password_file"),
    ("password_file-missing", password_file(None), "password_file"),
    ("password_file-world-readable", password_file(b"pw", mode=0o644), "chmod 600"),
    ("option_file-not-utf8", option_file(b"[client]\npassword=\xff\xfe\n"), "option_file"),
    ("option_file-garbage", option_file(b"password without a section\n"), "option_file"),
    ("option_file-port-text", option_file(b"[client]\nport=abc\n"), "port"),
]


@pytest.mark.parametrize(("name", "mutate", "mention"), CONFIG_CASES,
                         ids=[c[0] for c in CONFIG_CASES])
def test_bad_config_exit_3(tmp_path: Path, name: str, mutate: Callable[..., Any],
                           mention: str) -> None:
    content = mutate(base_config(), tmp_path)
    path = tmp_path / "config.json"
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    for args in (("config", "show"), ("analyze",), ("backup", "list", "--json")):
        result = run(tmp_path, *args)
        assert_refused(result, 3, mention)
        assert str(path.name) in result.stderr
    doc = json.loads(result.stdout)  # --json: the error document, alone on stdout
    assert doc["exit_code"] == 3 and mention in doc["error"] + str(doc["hint"])


@pytest.mark.parametrize(("where", "expected"), [
    ("directory", "is a directory"), ("missing", "not found"), ("dev-null", "empty")])
def test_config_path_that_is_not_a_config_file(tmp_path: Path, where: str,
                                               expected: str) -> None:
    path = {"directory": tmp_path, "missing": tmp_path / "nope.json",
            "dev-null": Path(os.devnull)}[where]
    assert_refused(run(tmp_path, "config", "show", config=path), 3, expected)


def test_odd_but_valid_configs_are_accepted(tmp_path: Path) -> None:
    doc = base_config()
    doc["databases"]["производство"] = doc["databases"].pop("production")
    doc["replication"]["target"] = "производство"
    doc["settings"] = {"threads": 64, "connection_timeout": 31_536_000,
                       "backup_retention_days": 36_500, "log_level": "debug"}
    path = tmp_path / "config.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(doc, ensure_ascii=False).encode())  # a BOM
    result = run(tmp_path, "config", "show")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["settings"]["threads"] == 64


# ------------------------------------------------------------ backup manifests (exit 7)
BACKUP_ID = f"{DB}_20240101_000000"


def write_backup(folder: Path) -> Path:
    """A tiny but genuine backup of `production` on disk; returns its manifest path."""
    import hashlib

    parts = [("header", None, b"-- MariaDB dump\n"), ("table", "t", b"CREATE TABLE t (id int);\n"),
             ("footer", None, b"\n-- Dump completed on 2024-01-01\n")]
    frames, data = [], b""
    for kind, name, body in parts:
        frame = zstandard.ZstdCompressor().compress(body)
        frames.append({"kind": kind, "name": name, "offset": len(data), "length": len(frame),
                       "raw_length": len(body)})
        data += frame
    env_dir = folder / "backups" / "production"
    env_dir.mkdir(parents=True)
    (env_dir / f"{BACKUP_ID}.sql.zst").write_bytes(data)
    manifest = {"format": 1, "id": BACKUP_ID, "status": "ok", "env": "production",
                "database": DB, "tables": ["t"], "views": [], "rows": {"t": 0},
                "whole_database": False, "label": None, "run_id": "20240101_000000",
                "sha256": hashlib.sha256(data).hexdigest(), "compressed_bytes": len(data),
                "uncompressed_bytes": sum(len(p[2]) for p in parts), "frames": frames}
    path = env_dir / f"{BACKUP_ID}.manifest.json"
    path.write_text(json.dumps(manifest))
    runs = folder / "logs" / "runs"
    runs.mkdir(parents=True)
    (runs / "20240101_000000.json").write_text(json.dumps({
        "run_id": "20240101_000000", "source": "development", "target": "production",
        "database": DB, "path": "x", "status": "done", "pid": 1, "started":
        "2024-01-01T00:00:00+00:00", "updated": "2024-01-01T00:00:01+00:00", "steps": {},
        "backups": [BACKUP_ID], "backed_up_tables": ["t"], "tables_created": [],
        "tables_altered": ["t"], "tables_copied": [], "resumed_times": 0, "failure": None}))
    return path


def manifest_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def apply(path: Path) -> None:
        doc = json.loads(path.read_text())
        result = change(doc)
        path.write_text(json.dumps(doc if result is None else result))
    return apply


def manifest_bytes(content: bytes) -> Callable[[Path], None]:
    return lambda path: path.write_bytes(content)


def _frames_offset_text(doc: dict[str, Any]) -> None:
    doc["frames"][1]["offset"] = "0"


MANIFEST_CASES: list[tuple[str, Callable[[Path], None]]] = [
    ("not-json", manifest_bytes(b"{not json")),
    ("not-utf8", manifest_bytes(b'{"status": "\xff"}')),
    ("empty", manifest_bytes(b"")),
    ("array", manifest_bytes(b"[]")),
    ("string", manifest_bytes(b'"ok"')),
    ("frames-null", manifest_edit(lambda d: d.update(frames=None))),
    ("frames-missing", manifest_edit(lambda d: d.pop("frames"))),
    ("frames-an-object", manifest_edit(lambda d: d.update(frames={"kind": "footer"}))),
    ("frame-offset-text", manifest_edit(_frames_offset_text)),
    ("tables-a-string", manifest_edit(lambda d: d.update(tables="t"))),
    ("tables-missing", manifest_edit(lambda d: d.pop("tables"))),
    ("rows-not-numbers", manifest_edit(lambda d: d.update(rows={"t": "many"}))),
    ("status-missing", manifest_edit(lambda d: d.pop("status"))),
    ("sha256-null", manifest_edit(lambda d: d.update(sha256=None))),
    ("size-true", manifest_edit(lambda d: d.update(compressed_bytes=True))),
    ("size-huge-float", manifest_bytes(b'{"compressed_bytes": 1e999}')),
]
BACKUP_COMMANDS = [
    ("backup", "list", "--env", "production"),
    ("backup", "list", "--json"),
    ("backup", "verify", BACKUP_ID, "--env", "production"),
    ("backup", "verify", "latest", "--env", "production", "--json"),
    ("backup", "restore", BACKUP_ID, "--env", "production", "--yes"),
    ("backup", "prune", "--env", "production", "--dry-run"),
    ("rollback", "--yes"),
    ("rollback", "20240101_000000", "--dry-run"),
]


@pytest.fixture
def backup_folder(tmp_path: Path) -> Path:
    (tmp_path / "config.json").write_text(json.dumps(base_config()))
    return tmp_path


def test_the_sample_backup_is_good(backup_folder: Path) -> None:
    write_backup(backup_folder)
    result = run(backup_folder, "backup", "verify", "latest", "--env", "production")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("name", "damage"), MANIFEST_CASES, ids=[c[0] for c in MANIFEST_CASES])
def test_damaged_backup_manifest_exit_7(backup_folder: Path, name: str,
                                        damage: Callable[[Path], None]) -> None:
    manifest = write_backup(backup_folder)
    damage(manifest)
    for args in BACKUP_COMMANDS:
        result = run(backup_folder, *args)
        assert_refused(result, 7, manifest.name)
        if "--json" in args:
            assert json.loads(result.stdout)["exit_code"] == 7


@pytest.mark.parametrize("content", [b"[]", b"{", b"\xff", b'{"run_id": 5}',
                                     b'{"run_id": "r", "source": "development", "target": '
                                     b'"production", "database": "shop", "pid": "me"}',
                                     b'{"run_id": "r", "source": "development", "target": '
                                     b'"production", "database": "shop", "updated": "soon"}'])
def test_damaged_run_journal(backup_folder: Path, content: bytes) -> None:
    write_backup(backup_folder)
    (backup_folder / "logs" / "runs" / "20240101_000000.json").write_bytes(content)
    # Named on the command line: exit 7 naming the journal; else it is not a run of ours.
    assert_refused(run(backup_folder, "rollback", "20240101_000000", "--yes"), 7,
                   "20240101_000000.json")
    assert_refused(run(backup_folder, "rollback", "--yes"), 2, "no sync run")


def test_rollback_to_a_missing_backup_exit_7(backup_folder: Path) -> None:
    manifest = write_backup(backup_folder)
    manifest.unlink()
    manifest.with_name(f"{BACKUP_ID}.sql.zst").unlink()
    assert_refused(run(backup_folder, "rollback", "--dry-run"), 7, BACKUP_ID)


def test_backup_verify_latest_ambiguous_is_a_usage_error(backup_folder: Path) -> None:
    write_backup(backup_folder)
    other = backup_folder / "backups" / "development"
    other.mkdir()
    for f in (backup_folder / "backups" / "production").iterdir():
        other.joinpath(f.name).write_bytes(f.read_bytes())
    result = run(backup_folder, "backup", "verify", "latest")
    assert_refused(result, 2, "--env")
    result = run(backup_folder, "backup", "verify", "latest", "--json")
    assert result.returncode == 2 and json.loads(result.stdout)["exit_code"] == 2
    assert run(backup_folder, "backup", "verify", "latest", "--env", "development"
               ).returncode == 0


@pytest.mark.parametrize("args", [("backup", "verify", "backups"),
                                  ("backup", "verify", "x.sql.zst")])
def test_backup_id_that_is_a_directory(backup_folder: Path, args: tuple[str, ...]) -> None:
    write_backup(backup_folder)
    (backup_folder / "x.sql.zst").mkdir()
    assert_refused(run(backup_folder, *args), 7)


# ------------------------------------------------------------ export manifests (exit 6)
def good_export(folder: Path) -> dict[str, Any]:
    import hashlib

    data = zstandard.ZstdCompressor().compress(b"1\n")
    (folder / "t.tsv.zst").write_bytes(data)
    return {"format": "dumpload-export/1", "database": DB, "tables": [{
        "name": "t", "file": "t.tsv.zst", "rows": 1, "bytes": 2, "compressed_bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(), "checksum": "0", "columns": [["id"]],
        "load": {"targets": "(`id`)", "sets": ""},
        "frames": [{"offset": 0, "length": len(data), "rows": 1, "sums": [1, 0],
                    "column": None, "lo": None, "hi": None}]}]}


def export_edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def apply(doc: dict[str, Any]) -> Any:
        result = change(doc)
        return doc if result is None else result
    return apply


EXPORT_CASES: list[tuple[str, Any]] = [
    ("no-tables", export_edit(lambda d: d.pop("tables"))),
    ("a-list", export_edit(lambda d: [d])),
    ("tables-null", export_edit(lambda d: d.update(tables=None))),
    ("tables-an-object", export_edit(lambda d: d.update(tables={"t": {}}))),
    ("rows-text", export_edit(lambda d: d["tables"][0].update(rows="1"))),
    ("name-missing", export_edit(lambda d: d["tables"][0].pop("name"))),
    ("frames-null", export_edit(lambda d: d["tables"][0].update(frames=None))),
    ("load-missing", export_edit(lambda d: d["tables"][0].pop("load"))),
    ("file-outside", export_edit(lambda d: d["tables"][0].update(file="../config.json"))),
    ("file-absolute", export_edit(lambda d: d["tables"][0].update(file="/etc/passwd"))),
    ("bound-injection", export_edit(lambda d: d["tables"][0]["frames"][0].update(
        column="id", lo="0 OR 1=1; DROP TABLE t"))),
    ("format-unknown", export_edit(lambda d: d.update(format="other/9"))),
    ("sha-mismatch", export_edit(lambda d: d["tables"][0].update(sha256="0" * 64))),
    ("not-json", b"{nope"),
    ("not-utf8", b'{"format": "\xff"}'),
    ("empty", b""),
    ("missing", None),
]


@pytest.mark.parametrize(("name", "change"), EXPORT_CASES, ids=[c[0] for c in EXPORT_CASES])
def test_damaged_export_manifest_exit_6(backup_folder: Path, name: str, change: Any) -> None:
    folder = backup_folder / "export"
    folder.mkdir()
    doc = good_export(folder)
    if callable(change):
        (folder / "manifest.json").write_text(json.dumps(change(doc)))
    elif change is not None:
        (folder / "manifest.json").write_bytes(change)
    for args in (("--yes",), ("--dry-run",)):
        result = run(backup_folder, "import", str(folder), "--env", "production", *args)
        assert_refused(result, 6, "manifest.json" if name not in ("sha-mismatch",) else "t.tsv")


def test_import_of_a_file_not_a_folder_is_a_usage_error(backup_folder: Path) -> None:
    result = run(backup_folder, "import", str(backup_folder / "config.json"), "--env",
                 "production")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_import_tables_matching_nothing_is_a_usage_error(backup_folder: Path) -> None:
    folder = backup_folder / "export"
    folder.mkdir()
    (folder / "manifest.json").write_text(json.dumps(good_export(folder)))
    result = run(backup_folder, "import", str(folder), "--env", "production", "--tables",
                 "nope*", "--dry-run")
    assert_refused(result, 2, "no table matches 'nope*'", "t")


def test_stdout_closed_early_is_no_traceback(backup_folder: Path) -> None:
    write_backup(backup_folder)
    read, write = os.pipe()
    os.close(read)  # like `dumpload backup list | head -0`
    try:
        result = subprocess.run([dumpload_command(), "--config",
                                 str(backup_folder / "config.json"), "backup", "list"],
                                stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write)
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr


def test_log_level_debug_shows_the_traceback(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_bytes(b"[]")
    plain = run(tmp_path, "config", "show")
    assert "Traceback" not in plain.stderr
    argv = [dumpload_command(), "--log-level", "DEBUG", "--config",
            str(tmp_path / "config.json"), "config", "show"]
    debug = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert debug.returncode == 3 and "Traceback" in debug.stderr
    assert debug.stderr.count("error:") == 1
