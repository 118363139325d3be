"""Config validation: every bad file is refused with exit 3, naming the key and the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from click.testing import CliRunner

from dumpload.cli import cli
from dumpload.config import load_config, masked, select_tables
from dumpload.errors import ConfigError


def good_config() -> dict:
    return {
        "databases": {
            "development": {"host": "127.0.0.1", "port": 3306, "user": "app", "password": "pw1",
                            "database": "shop"},
            "production": {"host": "db1.internal", "port": 3306, "user": "deploy",
                           "password_env": "DL_TEST_PROD_PW", "database": "shop"},
        },
        "replication": {"source": "development", "target": "production",
                        "structure_tables": ["*"], "data_tables": ["countries", "settings_*"],
                        "exclude_tables": ["sessions"]},
    }


def write(tmp_path: Path, doc: dict | str) -> Path:
    path = tmp_path / "config.json"
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc, indent=2))
    return path


@pytest.fixture(autouse=True)
def prod_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DL_TEST_PROD_PW", "s3cret-prod")


def refused(tmp_path: Path, doc: dict | str) -> str:
    path = write(tmp_path, doc)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert str(path) in message
    return message


def test_defaults_are_filled_in(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, good_config()))
    s = config.settings
    assert (s.backup_retention_days, s.max_backups, s.batch_size, s.threads) == (30, 50, 1000, 4)
    assert (s.log_level, s.connection_timeout, s.retry_attempts) == ("INFO", 30, 3)
    assert (s.keep_daily, s.keep_weekly, s.keep_monthly) == (0, 0, 0)
    assert s.backup_dir == tmp_path / "backups" and s.log_dir == tmp_path / "logs"
    assert config.target.password == "s3cret-prod"
    assert config.source.charset == "utf8mb4"
    assert config.replication.data_tables == ("countries", "settings_*")


def test_relative_paths_resolve_against_the_config_folder(tmp_path: Path) -> None:
    doc = good_config()
    doc["settings"] = {"backup_dir": "b/x", "log_dir": "/var/tmp/dl-logs"}
    config = load_config(write(tmp_path, doc))
    assert config.settings.backup_dir == tmp_path / "b" / "x"
    assert config.settings.log_dir == Path("/var/tmp/dl-logs")


def test_malformed_json_names_line_and_column(tmp_path: Path) -> None:
    message = refused(tmp_path, '{\n  "databases": {,\n}')
    assert ":2:17:" in message and "malformed JSON" in message


@pytest.mark.parametrize("drop, key", [
    (("databases",), "databases"),
    (("replication", "target"), "replication.target"),
    (("databases", "development", "user"), "databases.development.user"),
    (("databases", "development", "database"), "databases.development.database"),
])
def test_missing_keys(tmp_path: Path, drop: tuple[str, ...], key: str) -> None:
    doc = good_config()
    parent = doc
    for part in drop[:-1]:
        parent = parent[part]
    del parent[drop[-1]]
    assert f"'{key}'" in refused(tmp_path, doc)


@pytest.mark.parametrize("path, value, key", [
    (("databases", "development", "port"), "3306", "databases.development.port"),
    (("databases", "development", "port"), True, "databases.development.port"),
    (("replication", "data_tables"), "countries", "replication.data_tables"),
    (("replication", "data_tables"), ["ok", 3], "replication.data_tables[1]"),
    (("settings",), {"threads": "4"}, "settings.threads"),
    (("settings",), {"threads": 0}, "settings.threads"),
    (("settings",), {"log_level": "LOUD"}, "settings.log_level"),
    (("settings",), {"keep_daily": -1}, "settings.keep_daily"),
    (("settings",), {"keep_weekly": "2"}, "settings.keep_weekly"),
    (("settings",), {"keep_monthly": 1.5}, "settings.keep_monthly"),
])
def test_mistyped_keys(tmp_path: Path, path: tuple[str, ...], value: object, key: str) -> None:
    doc = good_config()
    parent = doc
    for part in path[:-1]:
        parent = parent[part]
    parent[path[-1]] = value
    assert f"'{key}'" in refused(tmp_path, doc)


def test_unknown_key_suggests_the_near_name(tmp_path: Path) -> None:
    doc = good_config()
    doc["settings"] = {"thread": 4}
    message = refused(tmp_path, doc)
    assert "'settings.thread'" in message and "did you mean 'threads'" in message
    doc = good_config()
    doc["databases"]["development"]["pasword"] = "x"
    assert "did you mean 'password'" in refused(tmp_path, doc)


def test_unknown_environment(tmp_path: Path) -> None:
    doc = good_config()
    doc["replication"]["target"] = "prodution"
    message = refused(tmp_path, doc)
    assert "replication.target" in message and "did you mean 'production'" in message


def test_unset_password_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DL_TEST_PROD_PW")
    message = refused(tmp_path, good_config())
    assert "databases.production.password_env" in message and "DL_TEST_PROD_PW" in message


def test_password_file_must_be_private_and_readable(tmp_path: Path) -> None:
    secret = tmp_path / "pw.txt"
    secret.write_text("from-file\n")
    doc = good_config()
    del doc["databases"]["production"]["password_env"]
    doc["databases"]["production"]["password_file"] = "pw.txt"
    secret.chmod(0o644)
    assert "readable by group or others" in refused(tmp_path, doc)
    secret.chmod(0o600)
    assert load_config(write(tmp_path, doc)).target.password == "from-file"
    secret.unlink()
    assert "databases.production.password_file" in refused(tmp_path, doc)


def test_option_file_supplies_the_password(tmp_path: Path) -> None:
    (tmp_path / "my.cnf").write_text("[client]\nuser=deploy\npassword=\"opt pw\"\n")
    doc = good_config()
    del doc["databases"]["production"]["password_env"]
    doc["databases"]["production"]["option_file"] = "my.cnf"
    assert load_config(write(tmp_path, doc)).target.password == "opt pw"


def test_source_and_target_on_the_same_server_and_database(tmp_path: Path) -> None:
    doc = good_config()
    doc["databases"]["production"].update(host="localhost", port=3306)
    doc["databases"]["development"].update(host="127.0.0.1")
    assert "same server and database" in refused(tmp_path, doc)
    doc["replication"]["target"] = "development"
    assert "replication.source and replication.target" in refused(tmp_path, doc)


def test_masked_never_shows_a_password(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, good_config()))
    text = json.dumps(masked(config))
    assert "pw1" not in text and "s3cret-prod" not in text and "********" in text


def test_select_tables_globs_and_excludes() -> None:
    names = ["countries", "settings_a", "settings_b", "sessions", "orders"]
    assert select_tables(names, ["settings_*", "countries"], ["settings_b"]) == [
        "countries", "settings_a"]
    assert select_tables(names, ["*"], ["sess*"]) == [
        "countries", "settings_a", "settings_b", "orders"]


def test_cli_refuses_bad_config_with_exit_3(tmp_path: Path) -> None:
    doc = good_config()
    doc["settings"] = {"retry_attempt": 3}
    path = write(tmp_path, doc)
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 3
    assert "settings.retry_attempt" in result.stderr and str(path) in result.stderr
    result = CliRunner().invoke(cli, ["--config", str(tmp_path / "missing.json"), "doctor"])
    assert result.exit_code == 3 and "not found" in result.stderr


def test_config_show_masks_secrets(tmp_path: Path) -> None:
    path = write(tmp_path, good_config())
    result = CliRunner().invoke(cli, ["--config", str(path), "config", "show"])
    assert result.exit_code == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["databases"]["development"]["password"] == "********"
    assert "s3cret-prod" not in result.stdout and "pw1" not in result.stdout
    assert shown["settings"]["max_backups"] == 50


def test_config_location_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, good_config())
    monkeypatch.setenv("DUMPLOAD_CONFIG", str(path))
    monkeypatch.chdir(os.path.dirname(path))
    result = CliRunner().invoke(cli, ["config", "show"])
    assert result.exit_code == 0 and json.loads(result.stdout)["config_file"] == str(path)
