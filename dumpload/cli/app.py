"""What every command shares: the click group, the run context, confirmation, output.

The CLI is thin: it parses, confirms, calls the library and prints. The library raises
`DumpLoadError`s; `DumpLoadGroup.invoke` is the single place that turns them (and any
other exception) into one message on stderr and the documented exit code, never a
traceback unless `--log-level DEBUG`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import traceback
from typing import Any

import click
import pymysql
from rich.console import Console

from dumpload import __version__
from dumpload.config import Config, DatabaseConfig, load_config, resolve_config_path
from dumpload.db import is_transient
from dumpload.errors import (
    EXIT_BACKUP,
    EXIT_CONFIG,
    EXIT_CONNECTION,
    EXIT_DATA,
    EXIT_INTERRUPTED,
    EXIT_STRUCTURE,
    ConnectError,
    DumpLoadError,
    UsageError,
)
from dumpload.logs import RunLog, start_run
from dumpload.tools import redact_argv, register_secrets, sweep_stale_credentials

LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


# Commands that write nothing: one line each in logs/commands.log instead of a run log.
READ_ONLY = frozenset({"analyze", "verify", "tables", "config show", "backup list",
                       "backup verify", "doctor"})


class App:
    """Per-invocation state: global options, the loaded config, the run log, the JSON
    document to print (held until the command ends, so that stdout carries exactly one)."""

    def __init__(self, config_path: str | None, log_level: str | None) -> None:
        self.config_path = resolve_config_path(config_path)
        self.log_level = log_level.upper() if log_level else None
        self.json_mode = False
        self.command = ""
        self.run: RunLog | None = None
        self.pending_json: tuple[Any, str] | None = None
        self._config: Config | None = None
        self._console_handler: logging.Handler | None = None
        self._held = contextlib.ExitStack()   # the target lock of a writing command

    @property
    def config(self) -> Config:
        if self._config is None:
            self._config = load_config(self.config_path)
            register_secrets([db.password for db in self._config.databases.values()])
        return self._config

    @property
    def console(self) -> Console:
        """Human output: stdout, or stderr when stdout carries a JSON document."""
        return _console(stderr=self.json_mode)

    @property
    def err_console(self) -> Console:
        return _console(stderr=True)

    def start(self, command: str, *, json_mode: bool = False,
              servers: dict[str, str] | None = None) -> RunLog:
        """Load the config and open this call's log; returns the run."""
        self.json_mode = json_mode
        self.command = command
        config = self.config
        level = self.log_level or config.settings.log_level
        self._attach_console_log()
        secrets = [db.password for db in config.databases.values() if db.password]
        argv = redact_argv(["dumpload", *sys.argv[1:]], secrets)
        servers = servers or {n: db.describe() for n, db in config.databases.items()}
        self.run = start_run(config.settings.log_dir, argv, level, servers,
                             read_only=command in READ_ONLY,
                             retention_days=config.settings.backup_retention_days)
        logging.getLogger("dumpload").info("subcommand: %s", command)
        sweep_stale_credentials()
        return self.run

    def _attach_console_log(self) -> None:
        # Warnings (retries, skipped items) reach the terminal; --log-level shows more.
        handler = logging.StreamHandler(sys.stderr)
        handler.setLevel(self.log_level or "WARNING")
        handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
        logger = logging.getLogger("dumpload")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        self._console_handler = handler

    def detach_console_log(self) -> None:
        if self._console_handler:
            logging.getLogger("dumpload").removeHandler(self._console_handler)
            self._console_handler = None

    def hold_target(self, target: DatabaseConfig) -> None:
        """Before a writing command's first change: take the target lock for the rest of
        the command (another writer: exit 2) and settle what an interrupted run left."""
        from dumpload.locks import writing

        assert self.run is not None, "start() first"
        settled = self._held.enter_context(writing(
            target, self.config.settings, command=self.command, run_id=self.run.run_id))
        if settled:
            self.err_console.print(f"settled an interrupted run on {target.name}: dropped "
                                   f"work table(s) {', '.join(settled)}", markup=False)

    def close(self) -> None:
        self._held.close()
        self.detach_console_log()
        if self.run:
            self.run.close()
            self.run = None

    def confirm(self, question: str, yes: bool) -> None:
        """Ask before a write; refuse (exit 2) with no terminal and no --yes."""
        if yes:
            return
        if not sys.stdin.isatty():
            raise UsageError("refusing to write without confirmation: no terminal to ask on",
                             hint="pass --yes to confirm in scripts and cron")
        if not click.confirm(question, default=False, err=True):
            raise UsageError("not confirmed; nothing was changed")

    def emit_json(self, document: Any, key: str = "result") -> None:
        """The command's JSON document: printed when the command ends. Should it fail,
        the error document carries it instead (merged, or under `key` when a list)."""
        self.pending_json = (document, key)

    def flush_json(self) -> None:
        if self.pending_json is not None:
            document, _ = self.pending_json
            self.pending_json = None
            click.echo(json.dumps(document, indent=2, default=str, ensure_ascii=False))


def _console(stderr: bool) -> Console:
    # Off a terminal (logs, CI, pipes) rich would wrap tables at 80 columns; $COLUMNS wins.
    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() or os.environ.get("COLUMNS") else 120
    return Console(stderr=stderr, highlight=False, soft_wrap=True, width=width)


# The exit code of an error no library code classified (a bug, a full disk, a path that
# is a directory), by the area of the command it happened in: runbooks still see which
# step failed.
_AREA_EXIT = {"doctor": EXIT_CONNECTION, "config": EXIT_CONFIG, "tables": EXIT_CONNECTION,
              "analyze": EXIT_STRUCTURE, "structure": EXIT_STRUCTURE, "backup": EXIT_BACKUP,
              "rollback": EXIT_BACKUP}


class DumpLoadGroup(click.Group):
    """The root group: the single place where errors become a message and an exit code.

    Every error is printed once, on stderr, as `error: <what> / hint: <next step>`; with
    `--json` stdout also carries `{"error", "exit_code", "hint"}` as its only document. No
    traceback is shown unless `--log-level DEBUG`.
    """

    def invoke(self, ctx: click.Context) -> Any:
        if ctx.parent is not None:  # a sub-group (`backup`, `config`): the root reports
            return super().invoke(ctx)
        # click empties these before the subcommand parses; keep them to spot --json.
        ctx.meta["dumpload.args"] = [*getattr(ctx, "_protected_args", []), *ctx.args]
        try:
            result = super().invoke(ctx)
        except click.exceptions.Exit:
            _flush_json(ctx)
            raise
        except click.exceptions.Abort:
            raise
        except click.ClickException as exc:
            # Bad options of a subcommand: click's own message, and the JSON document.
            if not _wants_json(ctx):
                raise
            _emit_error_json(ctx, exc.format_message(), exc.exit_code, None)
            exc.show()
            ctx.exit(exc.exit_code)
        except DumpLoadError as exc:
            _fail(ctx, exc, exc)
        except KeyboardInterrupt:
            _fail(ctx, UsageError("interrupted"), None, EXIT_INTERRUPTED)
        except pymysql.err.MySQLError as exc:
            _fail(ctx, _server_error(ctx, exc), exc)
        except BrokenPipeError:
            raise  # the reader of stdout went away (`| head`): click exits quietly
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            error = DumpLoadError(f"{exc.strerror or exc}{where}",
                                  hint="check the path, its type and its permissions")
            error.exit_code = _area_exit(ctx)
            _fail(ctx, error, exc)
        except Exception as exc:  # a bug: one line, the traceback only in the log / DEBUG
            error = DumpLoadError(f"internal error: {type(exc).__name__}: {exc}",
                                  hint="this is a bug in dumpload; rerun with --log-level "
                                  "DEBUG to see the traceback, and report it")
            error.exit_code = _area_exit(ctx)
            _fail(ctx, error, exc)
        else:
            _flush_json(ctx)
            return result
        finally:
            app = ctx.find_object(App)
            if app is not None:
                app.close()


def _wants_json(ctx: click.Context) -> bool:
    app = ctx.find_object(App)
    if app is not None and app.json_mode:
        return True
    # Before the command parsed its options, look for the flag among the raw arguments.
    args = ctx.meta.get("dumpload.args", [])
    return "--json" in args or "--json" in sys.argv[1:]


def _area_exit(ctx: click.Context) -> int:
    app = ctx.find_object(App)
    area = (app.command if app is not None and app.command else ctx.invoked_subcommand) or ""
    area = area.split()[0] if area else ""
    return _AREA_EXIT.get(area, EXIT_DATA)


def _server_error(ctx: click.Context, exc: pymysql.err.MySQLError) -> DumpLoadError:
    text = exc.args[-1] if exc.args else str(exc)
    if isinstance(exc, pymysql.err.OperationalError) and is_transient(exc):
        # A connection lost in the middle of a catalog query: as clear as a failed connect.
        return ConnectError(f"lost the connection to a server: {text}",
                            hint="check that both servers are up, then run the command "
                            "again (`sync` resumes where it stopped)")
    error = DumpLoadError(f"the server refused a statement: {text}",
                          hint="rerun with --log-level DEBUG for details")
    error.exit_code = _area_exit(ctx)
    return error


def _flush_json(ctx: click.Context) -> None:
    app = ctx.find_object(App)
    if app is not None:
        app.flush_json()


def _emit_error_json(ctx: click.Context, message: str, code: int, hint: str | None) -> None:
    app = ctx.find_object(App)
    doc: dict[str, Any] = {"error": message, "exit_code": code, "hint": hint}
    if app is not None and app.pending_json is not None:
        result, key = app.pending_json
        doc = ({**result, **doc} if isinstance(result, dict) else {**doc, key: result})
        app.pending_json = None
    click.echo(json.dumps(doc, indent=2, default=str, ensure_ascii=False))


def _fail(ctx: click.Context, error: DumpLoadError, cause: BaseException | None,
          code: int | None = None) -> None:
    code = error.exit_code if code is None else code
    if _wants_json(ctx):
        _emit_error_json(ctx, error.message, code, error.hint)
    _report(ctx, error, cause, code)
    ctx.exit(code)


def _report(ctx: click.Context, error: DumpLoadError, cause: BaseException | None,
            code: int) -> None:
    app = ctx.find_object(App)
    debug = app is not None and app.log_level == "DEBUG"
    if app is not None:
        app.detach_console_log()  # the message below is the user's copy; no echo of it
    click.echo(f"error: {error}", err=True)
    if debug and cause is not None:
        click.echo("".join(traceback.format_exception(cause)), err=True)
    if app is None or app.run is None:
        return  # nothing was opened yet (a config error): the terminal is the only record
    app.run.failed(error.message, code, cause,
                   step=getattr(cause, "step", "-") or "-",
                   table=getattr(cause, "table", "-") or "-")
    click.echo(f"  log: {app.run.path}", err=True)


def private_umask() -> None:
    """Files and folders this process creates are its user's alone (0600 / 0700), whatever
    the caller's umask; the library also asks for those modes explicitly."""
    os.umask(0o077)


def pass_app(fn: Any) -> Any:
    return click.pass_obj(fn)


def version_string() -> str:
    return f"dumpload {__version__}"


# Options shared by the commands that compare or copy between two environments.
def from_to_options(fn: Any) -> Any:
    fn = click.option("--to", "to_env", metavar="NAME",
                      help="Target environment (default: replication.target).")(fn)
    return click.option("--from", "from_env", metavar="NAME",
                        help="Source environment (default: replication.source).")(fn)


def tables_option(fn: Any) -> Any:
    return click.option("--tables", "tables", multiple=True, metavar="GLOB",
                        help="Tables to include (repeatable; shell-style globs). Default: the "
                        "configured list for this command; exclude_tables still applies.")(fn)


def copy_mode_options(fn: Any) -> Any:
    """`--full` and `--lock-target`, shared by `data` and `sync`."""
    fn = click.option("--lock-target", is_flag=True,
                      help="Block writes to each target table while it is copied (readers "
                      "are not blocked). Without it, a table written to during its copy is "
                      "not swapped and the command exits 6. Implies --full.")(fn)
    return click.option("--full", is_flag=True,
                        help="Copy whole tables: no delta copy (by default a large table "
                        "whose key ranges mostly match has only its differing ranges "
                        "replaced).")(fn)


def yes_option(fn: Any) -> Any:
    return click.option("--yes", "-y", is_flag=True,
                        help="Do not ask for confirmation (for runbooks and cron).")(fn)


def read_only_yes_option(fn: Any) -> Any:
    """`--yes` on a command that writes nothing to a server: accepted so runbooks can pass
    it to every command, with nothing to confirm."""
    return click.option("--yes", "-y", "_yes", is_flag=True, expose_value=False,
                        help="Accepted for runbooks; nothing to confirm (this command only "
                        "reads the server).")(fn)


def resolve_envs(app: App, from_env: str | None, to_env: str | None) -> tuple[Any, Any]:
    """(source, target) `DatabaseConfig`s from --from/--to or the replication section."""
    config = app.config
    source = config.env(from_env or config.replication.source)
    target = config.env(to_env or config.replication.target)
    if source.name == target.name:
        raise UsageError(f"--from and --to both name {source.name!r}",
                         hint="the target must be another environment")
    return source, target


def table_patterns(app: App, tables: tuple[str, ...], configured: tuple[str, ...]) -> tuple[
        tuple[str, ...], tuple[str, ...]]:
    """(include globs, exclude globs): --tables replaces the configured list."""
    return (tables or configured), app.config.replication.exclude_tables
