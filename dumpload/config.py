"""Load, validate and resolve `config.json` into frozen dataclasses.

Everything here happens before any connection is opened: a bad file is refused with
`ConfigError` (exit 3) naming the file and the key. Secrets are resolved once, here, from
`password`, `password_env`, `password_file` or an `option_file`, and never printed.
"""

from __future__ import annotations

import configparser
import difflib
import fnmatch
import json
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from pymysql.charset import charset_by_name

from dumpload.errors import ConfigError, UsageError
from dumpload.shapes import json_type

MASK = "********"

_DB_REQUIRED = ("user", "database")
_DB_TYPES: dict[str, type | tuple[type, ...]] = {
    "host": str, "port": int, "user": str, "password": str, "password_env": str,
    "password_file": str, "option_file": str, "database": str, "socket": str,
    "charset": str, "ssl_ca": str, "ssl_cert": str, "ssl_key": str,
    "ssl_verify_identity": bool, "compress": str,
}
COMPRESS_MODES = ("auto", "on", "off")  # protocol compression of the native clients
_PASSWORD_SOURCES = ("password", "password_env", "password_file", "option_file")
_REPLICATION_TYPES: dict[str, type | tuple[type, ...]] = {
    "source": str, "target": str, "structure_tables": list, "data_tables": list,
    "exclude_tables": list,
}
_SETTINGS_TYPES: dict[str, type | tuple[type, ...]] = {
    "backup_dir": str, "log_dir": str, "backup_retention_days": int, "max_backups": int,
    "batch_size": int, "threads": int, "log_level": str, "connection_timeout": int,
    "retry_attempts": int, "compression_level": int,
    "lock_wait_timeout": int, "lock_wait_total": int,
    "keep_daily": int, "keep_weekly": int, "keep_monthly": int,
    "large_table_mb": (int, float), "in_place_max_mb": (int, float),
}
# The CLI's --threads limit and the settings' one; at run time the servers'
# max_connections bounds it further (`dumpload.db.usable_threads`).
MAX_THREADS = 64
# Inclusive bounds of the integer settings. connection_timeout: PyMySQL refuses more than a
# year; backup_retention_days: a cutoff date must stay a date (100 years is plenty).
SETTINGS_BOUNDS: dict[str, tuple[int, int]] = {
    "threads": (1, MAX_THREADS), "batch_size": (1, 1_000_000),
    "connection_timeout": (1, 31_536_000), "retry_attempts": (1, 100),
    "max_backups": (1, 1_000_000), "backup_retention_days": (0, 36_500),
    "compression_level": (1, 19), "keep_daily": (0, 100_000), "keep_weekly": (0, 100_000),
    "keep_monthly": (0, 100_000), "large_table_mb": (0, 1_000_000_000),
    "lock_wait_timeout": (1, 3600), "lock_wait_total": (1, 86_400),
    "in_place_max_mb": (0, 1_000_000),
}
_BOUND_WHY = {
    "threads": f"at most {MAX_THREADS} parallel workers (each holds server connections)",
    "connection_timeout": "seconds; PyMySQL accepts at most 31536000 (one year)",
    "backup_retention_days": "days; 36500 is a century",
    "compression_level": "zstd levels 1 (fast) to 19 (small)",
    "lock_wait_timeout": "seconds; application queries queue behind a waiting DDL that long",
}
_ENV_NAME = re.compile(r"\w[\w.@+-]*")
_NON_EMPTY = ("host", "database", "socket", "charset", "password_env", "password_file",
              "option_file", "ssl_ca", "ssl_cert", "ssl_key")
_LIST_MAX = 12  # names listed in a "no table matches" message before "…"
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@dataclass(frozen=True)
class DatabaseConfig:
    """One configured server + schema ("environment"). `password` is already resolved."""

    name: str
    user: str
    database: str
    host: str = "127.0.0.1"
    port: int = 3306
    password: str | None = field(default=None, repr=False)
    password_source: str = "none"
    socket: str | None = None
    charset: str = "utf8mb4"
    option_file: Path | None = None
    ssl_ca: Path | None = None
    ssl_cert: Path | None = None
    ssl_key: Path | None = None
    ssl_verify_identity: bool = False
    compress: str = "auto"  # "auto" (on unless loopback/socket), "on", "off"

    @property
    def tls(self) -> bool:
        return bool(self.ssl_ca or self.ssl_cert or self.ssl_key or self.ssl_verify_identity)

    @property
    def address(self) -> str:
        """Where the server is, for messages: host:port or the socket path."""
        return f"socket {self.socket}" if self.socket else f"{self.host}:{self.port}"

    def describe(self) -> str:
        return f"{self.name} ({self.user}@{self.address}/{self.database})"


@dataclass(frozen=True)
class ReplicationConfig:
    source: str
    target: str
    structure_tables: tuple[str, ...] = ("*",)
    data_tables: tuple[str, ...] = ()
    exclude_tables: tuple[str, ...] = ()


@dataclass(frozen=True)
class Settings:
    backup_dir: Path
    log_dir: Path
    backup_retention_days: int = 30
    max_backups: int = 50
    batch_size: int = 1000
    threads: int = 4
    log_level: str = "INFO"
    connection_timeout: int = 30
    retry_attempts: int = 3
    compression_level: int = 3
    lock_wait_timeout: int = 5      # seconds one DDL waits for a metadata lock
    lock_wait_total: int = 300      # seconds a swap keeps retrying before it gives up
    keep_daily: int = 0      # grandfather-father-son retention of full backups; 0 = off
    keep_weekly: int = 0
    keep_monthly: int = 0
    large_table_mb: float = 256     # structure: ALTERs of bigger tables get an estimate
    in_place_max_mb: float = 16     # data: smaller tables are replaced in one transaction


@dataclass(frozen=True)
class Config:
    path: Path
    databases: Mapping[str, DatabaseConfig]
    replication: ReplicationConfig
    settings: Settings

    def env(self, name: str) -> DatabaseConfig:
        """The environment called `name`; unknown names are a config error with a hint."""
        if name not in self.databases:
            raise ConfigError(
                f"{self.path}: unknown environment {name!r}",
                hint=_suggest(name, self.databases) or
                f"configured environments: {', '.join(sorted(self.databases))}")
        return self.databases[name]

    @property
    def source(self) -> DatabaseConfig:
        return self.databases[self.replication.source]

    @property
    def target(self) -> DatabaseConfig:
        return self.databases[self.replication.target]


def resolve_config_path(option: str | None) -> Path:
    """`--config PATH`, else `$DUMPLOAD_CONFIG`, else `./config.json`."""
    return Path(option or os.environ.get("DUMPLOAD_CONFIG") or "config.json")


def load_config(path: Path) -> Config:
    """Read and validate `path`; raise `ConfigError` naming the key on any problem."""
    raw = _read_json(path)
    base = path.resolve().parent
    _check_keys(path, "", raw, {"databases", "replication", "settings"},
                required=("databases", "replication"))
    databases = _parse_databases(path, base, _expect(path, "databases", raw["databases"], dict))
    replication = _parse_replication(path, _expect(path, "replication", raw["replication"], dict))
    settings = _parse_settings(path, base, _expect(path, "settings", raw.get("settings", {}), dict))
    for role in ("source", "target"):
        name = getattr(replication, role)
        if name not in databases:
            raise ConfigError(
                f"{path}: replication.{role} names environment {name!r}, which is not in "
                f"'databases'", hint=_suggest(name, databases) or
                f"configured environments: {', '.join(sorted(databases)) or 'none'}")
    _refuse_same_server(path, databases[replication.source], databases[replication.target])
    return Config(path=path, databases=databases, replication=replication, settings=settings)


def select_tables(names: Iterable[str], include: Iterable[str],
                  exclude: Iterable[str] = ()) -> list[str]:
    """Names matching any `include` glob and no `exclude` glob, in the given order.

    Matching is case-sensitive, like table names on a default Linux server.
    """
    def matcher(patterns: Iterable[str]) -> Callable[[str], bool]:
        # Plain names are looked up in a set: selecting 1,000 tables by name stays linear.
        plain = {p for p in patterns if not is_glob(p)}
        globs = [p for p in patterns if is_glob(p)]
        return lambda n: n in plain or any(fnmatch.fnmatchcase(n, p) for p in globs)
    included, excluded = matcher(list(include)), matcher(list(exclude))
    return [n for n in names if included(n) and not excluded(n)]


def is_glob(pattern: str) -> bool:
    return any(ch in pattern for ch in "*?[")


def match_tables(names: Sequence[str], include: Iterable[str], exclude: Iterable[str] = (),
                 *, where: str) -> list[str]:
    """`select_tables`, but every include pattern must match at least one of `names`.

    A `--tables` or configured pattern that matches nothing is a mistake (a typo, the wrong
    environment), never a success that did nothing: it raises `UsageError` (exit 2)
    listing what `where` (e.g. "production", "export /tmp/x") does have. `*` alone is
    exempt: it asks for whatever there is, which may be nothing.
    """
    include, exclude = list(include), list(exclude)
    # '*' means "whatever there is": an empty schema (or one of routines only) is no typo.
    named = [p for p in include if p.strip("*")]
    for pattern in named:
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names):
            raise no_table_matches(pattern, names, where)
    selected = select_tables(names, include, exclude)
    if named and not selected:  # they all matched, but only excluded tables
        raise UsageError(f"every table matching {', '.join(map(repr, include))} on {where} is "
                         "excluded by replication.exclude_tables",
                         hint="drop them from exclude_tables, or pick other tables")
    return selected


def no_table_matches(pattern: str, names: Sequence[str], where: str) -> UsageError:
    shown = ", ".join(names[:_LIST_MAX]) + ("…" if len(names) > _LIST_MAX else "")
    near = _suggest(pattern, names)
    return UsageError(f"no table matches {pattern!r}; tables on {where}: {shown or 'none'}",
                      hint=near or "check --tables or the replication table lists "
                      "(`dumpload tables --env NAME` lists the tables)")


def masked(config: Config) -> dict[str, Any]:
    """The resolved configuration as plain data, secrets replaced by a mask."""
    dbs = {}
    for name, db in config.databases.items():
        entry = {f.name: _plain(getattr(db, f.name)) for f in fields(db) if f.name != "name"}
        entry["password"] = MASK if db.password else ("" if db.password == "" else None)
        dbs[name] = entry
    repl = {f.name: list(v) if isinstance(v := getattr(config.replication, f.name), tuple) else v
            for f in fields(config.replication)}
    sets = {f.name: _plain(getattr(config.settings, f.name)) for f in fields(config.settings)}
    return {"config_file": str(config.path.resolve()), "databases": dbs,
            "replication": repl, "settings": sets}


def _plain(value: Any) -> Any:
    return str(value) if isinstance(value, Path) else value


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"configuration file {path} not found",
                          hint="pass --config PATH or set DUMPLOAD_CONFIG") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration file {path} is a directory",
                          hint="pass --config PATH/config.json") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (byte {exc.start})",
                          hint="save the file as UTF-8") from None
    if not text.strip():
        raise ConfigError(f"{path}: the file is empty",
                          hint="it must hold a JSON object with 'databases' and 'replication'")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}:{exc.lineno}:{exc.colno}: malformed JSON: {exc.msg}") from None
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, [[[[...]]]]
        raise ConfigError(f"{path}: unreadable JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise ConfigError(f"{path}: the top level must be a JSON object, got {json_type(doc)}",
                          hint="it must hold a JSON object with 'databases' and 'replication'")
    _refuse_nul(path, "", doc)
    return doc


def _refuse_nul(path: Path, where: str, value: Any) -> None:
    # A NUL byte cannot reach a server or a tool's argv; refuse it here, by key.
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(path, f"{where}.{key}" if where else key, item)
            if "\x00" in key:
                raise ConfigError(f"{path}: key {key!r} holds a NUL character")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _refuse_nul(path, f"{where}[{i}]", item)
    elif isinstance(value, str) and "\x00" in value:
        raise ConfigError(f"{path}: '{where}' holds a NUL character")


def _expect(path: Path, key: str, value: Any, kind: type | tuple[type, ...]) -> Any:
    # bool is an int in Python; a port of `true` is still a mistake.
    wrong_bool = isinstance(value, bool) and kind in (int, str, list, dict)
    if wrong_bool or not isinstance(value, kind):
        names = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
        shown = "" if value is None or isinstance(value, dict | list) else f" {value!r:.60}"
        raise ConfigError(f"{path}: '{key}' must be {_json_kind(names)}, "
                          f"got {json_type(value)}{shown}")
    return value


def _json_kind(python_names: str) -> str:
    return (python_names.replace("dict", "an object").replace("list", "a list")
            .replace("str", "a string").replace("int", "an integer")
            .replace("bool", "true/false"))


def _check_keys(path: Path, prefix: str, obj: Mapping[str, Any], known: Iterable[str],
                required: Iterable[str] = ()) -> None:
    known = set(known)
    for key in obj:
        if key not in known:
            raise ConfigError(f"{path}: unknown key '{prefix}{key}'",
                              hint=_suggest(key, known)
                              or f"known keys: {', '.join(sorted(known))}")
    for key in required:
        if key not in obj:
            raise ConfigError(f"{path}: missing required key '{prefix}{key}'")


def _suggest(word: str, candidates: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _parse_databases(path: Path, base: Path, raw: dict[str, Any]) -> dict[str, DatabaseConfig]:
    if not raw:
        raise ConfigError(f"{path}: 'databases' is empty; configure at least a source and a target")
    return {name: _parse_database(path, base, name, _expect(path, f"databases.{name}", entry, dict))
            for name, entry in raw.items()}


def _parse_database(path: Path, base: Path, name: str, raw: dict[str, Any]) -> DatabaseConfig:
    prefix = f"databases.{name}."
    if not _ENV_NAME.fullmatch(name):
        # The name becomes a folder under backup_dir: no '/', no '..', no blank.
        raise ConfigError(f"{path}: environment name {name!r} in 'databases' is not a plain "
                          "name", hint="use letters, digits, '_', '.', '-'")
    _check_keys(path, prefix, raw, _DB_TYPES, required=_DB_REQUIRED)
    for key, value in raw.items():
        _expect(path, prefix + key, value, _DB_TYPES[key])
        if key in _NON_EMPTY and not value.strip():
            raise ConfigError(f"{path}: '{prefix}{key}' is empty")
    if "charset" in raw and charset_by_name(raw["charset"]) is None:
        raise ConfigError(f"{path}: '{prefix}charset' {raw['charset']!r} is not a character "
                          "set the client knows", hint="the default, utf8mb4, suits every server")
    given = [k for k in _PASSWORD_SOURCES[:3] if k in raw]
    if len(given) > 1:
        raise ConfigError(f"{path}: {prefix[:-1]} gives both '{given[0]}' and '{given[1]}'",
                          hint="keep one password source")
    if "host" not in raw and "socket" not in raw and "option_file" not in raw:
        raise ConfigError(f"{path}: missing required key '{prefix}host' (or '{prefix}socket')")
    if "port" in raw and not 0 < raw["port"] < 65536:
        raise ConfigError(f"{path}: '{prefix}port' must be between 1 and 65535, got {raw['port']}")
    if raw.get("compress", "auto") not in COMPRESS_MODES:
        raise ConfigError(f"{path}: '{prefix}compress' must be one of "
                          f"{', '.join(COMPRESS_MODES)}, got {raw['compress']!r}",
                          hint=_suggest(str(raw["compress"]), COMPRESS_MODES))
    paths: dict[str, Path] = {k: _resolve_path(base, raw[k]) for k in
             ("option_file", "ssl_ca", "ssl_cert", "ssl_key", "password_file") if k in raw}
    for key in ("ssl_ca", "ssl_cert", "ssl_key"):
        if key in paths and not paths[key].is_file():
            what = "is not a file" if paths[key].exists() else "does not exist"
            raise ConfigError(f"{path}: '{prefix}{key}' {paths[key]} {what}")
    options = (_read_option_file(path, prefix, paths["option_file"])
               if "option_file" in paths else {})
    password, source = _resolve_password(path, prefix, raw, paths, options)
    return DatabaseConfig(
        name=name, user=raw.get("user") or options.get("user", ""), database=raw["database"],
        host=raw.get("host", options.get("host", "127.0.0.1")),
        port=int(raw.get("port", options.get("port", 3306))),
        password=password, password_source=source,
        socket=raw.get("socket", options.get("socket")), charset=raw.get("charset", "utf8mb4"),
        option_file=paths.get("option_file"), ssl_ca=paths.get("ssl_ca"),
        ssl_cert=paths.get("ssl_cert"), ssl_key=paths.get("ssl_key"),
        ssl_verify_identity=raw.get("ssl_verify_identity", False),
        compress=raw.get("compress", "auto"))


def _resolve_path(base: Path, value: str) -> Path:
    p = Path(value).expanduser()
    return p if p.is_absolute() else base / p


def _resolve_password(path: Path, prefix: str, raw: Mapping[str, Any], paths: Mapping[str, Path],
                      options: Mapping[str, str]) -> tuple[str | None, str]:
    if "password" in raw:
        return raw["password"], "password"
    if "password_env" in raw:
        var = raw["password_env"]
        if var not in os.environ:
            raise ConfigError(f"{path}: '{prefix}password_env' names ${var}, which is not set",
                              hint=f"export {var}=... before running dumpload")
        return os.environ[var], f"password_env:{var}"
    if "password_file" in raw:
        return _read_password_file(path, prefix, paths["password_file"]), "password_file"
    if "password" in options:
        return options["password"], "option_file"
    return None, "none"


def _read_password_file(path: Path, prefix: str, file: Path) -> str:
    try:
        mode = file.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(
                f"{path}: '{prefix}password_file' {file} is readable by group or others "
                f"(mode {stat.S_IMODE(mode):o})", hint=f"chmod 600 {file}")
        return file.read_bytes().decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: '{prefix}password_file' {file} is not UTF-8 text",
                          hint="write the password as UTF-8, on one line") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read '{prefix}password_file' {file}: "
                          f"{exc.strerror}") from None


def _read_option_file(path: Path, prefix: str, file: Path) -> dict[str, str]:
    """The [client] section of a my.cnf, the part the server's own clients read too."""
    parser = configparser.ConfigParser(allow_no_value=True, interpolation=None, strict=False)
    try:
        with file.open(encoding="utf-8") as fh:
            parser.read_file(fh)
    except (OSError, configparser.Error, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) else (
            "not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else str(exc))
        raise ConfigError(f"{path}: cannot read '{prefix}option_file' {file}: {why}") from None
    if not parser.has_section("client"):
        return {}
    out = {k: v.strip().strip("'\"") for k, v in parser.items("client") if v is not None}
    if "port" in out and not out["port"].isdigit():
        raise ConfigError(f"{path}: option file {file} has a non-numeric port {out['port']!r}")
    return out


def _parse_replication(path: Path, raw: dict[str, Any]) -> ReplicationConfig:
    _check_keys(path, "replication.", raw, _REPLICATION_TYPES, required=("source", "target"))
    values: dict[str, Any] = {}
    for key, value in raw.items():
        _expect(path, f"replication.{key}", value, _REPLICATION_TYPES[key])
        if isinstance(value, list):
            for i, item in enumerate(value):
                _expect(path, f"replication.{key}[{i}]", item, str)
            value = tuple(value)
        values[key] = value
    if values["source"] == values["target"]:
        raise ConfigError(f"{path}: replication.source and replication.target are both "
                          f"{values['source']!r}", hint="the target must be another environment")
    return ReplicationConfig(**values)


def _parse_settings(path: Path, base: Path, raw: dict[str, Any]) -> Settings:
    _check_keys(path, "settings.", raw, _SETTINGS_TYPES)
    for key, value in raw.items():
        _expect(path, f"settings.{key}", value, _SETTINGS_TYPES[key])
    for key, (low, high) in SETTINGS_BOUNDS.items():
        if key in raw and not low <= raw[key] <= high:
            raise ConfigError(f"{path}: 'settings.{key}' must be between {low} and {high}, "
                              f"got {raw[key]}", hint=_BOUND_WHY.get(key))
    for key in ("backup_dir", "log_dir"):
        folder = _resolve_path(base, raw.get(key, key.replace("_dir", "s")))
        if folder.exists() and not folder.is_dir():
            raise ConfigError(f"{path}: 'settings.{key}' {folder} exists and is not a folder")
    level = raw.get("log_level", "INFO").upper()
    if level not in _LOG_LEVELS:
        raise ConfigError(f"{path}: 'settings.log_level' must be one of {', '.join(_LOG_LEVELS)}",
                          hint=_suggest(level, _LOG_LEVELS))
    values = {k: v for k, v in raw.items() if k not in ("backup_dir", "log_dir", "log_level")}
    return Settings(backup_dir=_resolve_path(base, raw.get("backup_dir", "backups")),
                    log_dir=_resolve_path(base, raw.get("log_dir", "logs")),
                    log_level=level, **values)


def _refuse_same_server(path: Path, source: DatabaseConfig, target: DatabaseConfig) -> None:
    def where(db: DatabaseConfig) -> tuple[Any, ...]:
        host = "localhost" if db.host in ("127.0.0.1", "localhost", "::1") else db.host.lower()
        return (db.socket or (host, db.port), db.database)

    if where(source) == where(target):
        raise ConfigError(
            f"{path}: source {source.name!r} and target {target.name!r} are the same server and "
            f"database ({target.address}/{target.database})",
            hint="point replication.target at another server or database")
