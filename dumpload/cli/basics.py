"""Foundation commands: `doctor`, `config show`, `tables`."""

from __future__ import annotations

import click
from rich.table import Table

from dumpload.catalog import human_bytes, table_sizes
from dumpload.cli import cli
from dumpload.cli.app import App, DumpLoadGroup, pass_app
from dumpload.config import masked
from dumpload.db import session
from dumpload.doctor import run_checks
from dumpload.errors import EXIT_CONNECTION, EXIT_DIFFERENCES, DumpLoadError


class DoctorFailed(DumpLoadError):
    """Some doctor check failed; the table already says which."""

    exit_code = EXIT_DIFFERENCES


class DoctorCannotConnect(DoctorFailed):
    """A server could not be reached: the same exit code as any connection failure."""

    exit_code = EXIT_CONNECTION


@cli.command()
@click.option("--env", "env_name", metavar="NAME",
              help="Check only this environment (default: every configured one).")
@click.option("--json", "as_json", is_flag=True, help="Print the checks as one JSON document.")
@pass_app
def doctor(app: App, env_name: str | None, as_json: bool) -> None:
    """Check connections, server versions, privileges, client tools, local_infile and the
    backup folder. Exits 0 only when every check passes."""
    app.start("doctor", json_mode=as_json)
    envs = [app.config.env(env_name).name] if env_name else list(app.config.databases)
    checks = run_checks(app.config, envs)
    if as_json:  # on a failure the error document carries them as "checks"
        app.emit_json([c.__dict__ for c in checks], key="checks")
    table = Table("env", "check", "", "detail", "fix", show_lines=False)
    for c in checks:
        mark = "[red]✗[/]" if not c.ok else "[yellow]![/]" if c.warn else "[green]✓[/]"
        table.add_row(c.env, c.name, mark, c.detail, c.hint)
    app.console.print(table)
    failed = [c for c in checks if not c.ok]
    if failed:
        error = (DoctorCannotConnect if any(c.name == "connection" for c in failed)
                 else DoctorFailed)
        raise error(f"{len(failed)} of {len(checks)} checks failed",
                           hint="apply the fixes in the table, then run doctor again")
    warned = sum(c.warn for c in checks)
    app.console.print(f"all {len(checks)} checks passed"
                      + (f", {warned} warning(s): see the fix column" if warned else ""))


@cli.group(cls=DumpLoadGroup)
def config() -> None:
    """Inspect the configuration."""


@config.command("show")
@pass_app
def config_show(app: App) -> None:
    """Print the resolved configuration (defaults filled in, paths absolute, secrets masked)
    as one JSON document."""
    app.start("config show", json_mode=True)
    app.emit_json(masked(app.config))


@cli.command()
@click.option("--env", "env_name", required=True, metavar="NAME", help="Environment to list.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON document.")
@pass_app
def tables(app: App, env_name: str, as_json: bool) -> None:
    """List the tables of an environment with engine, rows (estimate), data and index size."""
    app.start("tables", json_mode=as_json)
    env = app.config.env(env_name)
    with session(env, app.config.settings) as s:
        sizes = table_sizes(s)
    if as_json:
        app.emit_json([t.__dict__ for t in sizes])
        return
    table = Table("table", "type", "engine", "rows (est.)", "data", "index",
                  title=f"{env.describe()}: {len(sizes)} tables")
    for t in sizes:
        table.add_row(t.name, "view" if t.kind == "VIEW" else "table", t.engine or "",
                      f"{t.rows:,}", human_bytes(t.data_bytes), human_bytes(t.index_bytes))
    app.console.print(table)
