"""The `dumpload` command line (click). One module per area registers its commands.

`main` is the console-script entry point; `cli` is the click group (tests drive it with
click's runner). Areas register their commands by being imported below.
"""

from __future__ import annotations

import json
import sys

import click

from dumpload import __version__
from dumpload.cli.app import LEVELS, App, DumpLoadGroup, private_umask
from dumpload.errors import EXIT_INTERRUPTED


@click.group(cls=DumpLoadGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", metavar="PATH",
              help="Configuration file (default: $DUMPLOAD_CONFIG, else ./config.json).")
@click.option("--log-level", type=click.Choice(LEVELS, case_sensitive=False),
              help="Show log records of this level and above on stderr (DEBUG also shows "
              "tracebacks); overrides settings.log_level for the run log.")
@click.version_option(__version__, prog_name="dumpload")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None, log_level: str | None) -> None:
    """Bring a target MySQL/MariaDB database in line with a source one, safely.

    Exit codes: 0 ok, 1 differences found, 2 usage or refused confirmation,
    3 configuration, 4 connection, 5 structure, 6 data, 7 backup/restore,
    8 verification failed after a write, 130 interrupted.
    """
    ctx.obj = App(config_path, log_level)


def main() -> None:
    """The console script. Errors of the root options (before a command runs) also give
    the JSON error document when `--json` is on the command line."""
    private_umask()
    try:
        code = cli.main(prog_name="dumpload", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except click.ClickException as exc:
        if "--json" in sys.argv[1:]:
            click.echo(json.dumps({"error": exc.format_message(), "exit_code": exc.exit_code,
                                   "hint": "dumpload --help shows the usage"}, indent=2))
        exc.show()
        sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)


# Areas: importing a module registers its commands on `cli`.
from dumpload.cli import backup, basics, data, flow, structure  # noqa: E402,F401
