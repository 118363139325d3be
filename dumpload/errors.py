"""The one exception family of dumpload.

Every error the library raises is a `DumpLoadError`; each subclass carries the process
exit code that DESIGN.md fixes for it, and an optional hint telling the user what to do
next. The CLI is the only place that turns them into messages and exit codes.
"""

from __future__ import annotations

# Exit codes from DESIGN.md. Shell runbooks depend on these numbers.
EXIT_OK = 0
EXIT_DIFFERENCES = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3
EXIT_CONNECTION = 4
EXIT_STRUCTURE = 5
EXIT_DATA = 6
EXIT_BACKUP = 7
EXIT_VERIFY = 8
EXIT_INTERRUPTED = 130


class DumpLoadError(Exception):
    """Base class: `message` says what failed and where, `hint` what to do next."""

    exit_code = EXIT_DATA

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(DumpLoadError):
    """Bad command-line use, or a write refused for want of confirmation."""

    exit_code = EXIT_USAGE


class ConfigError(DumpLoadError):
    """The configuration file is missing, malformed or inconsistent."""

    exit_code = EXIT_CONFIG


class ConnectError(DumpLoadError):
    """A server could not be reached or refused our credentials."""

    exit_code = EXIT_CONNECTION


class StructureError(DumpLoadError):
    """The structure plan could not be built, was refused, or did not converge."""

    exit_code = EXIT_STRUCTURE


class DataError(DumpLoadError):
    """Copying, exporting or importing table data failed."""

    exit_code = EXIT_DATA


class BackupError(DumpLoadError):
    """A backup could not be created, verified, pruned or restored."""

    exit_code = EXIT_BACKUP


class VerifyError(DumpLoadError):
    """A verification after a write found the target different from the source."""

    exit_code = EXIT_VERIFY


class ToolError(DumpLoadError):
    """A native binary (dump tool, client) failed.

    Callers usually re-raise it as the error of their step (`BackupError`, `DataError`)
    so that the exit code says which step failed; the tool's stderr is kept in `stderr`.
    """

    exit_code = EXIT_DATA

    def __init__(self, message: str, *, stderr: str = "", returncode: int | None = None,
                 hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.stderr = stderr
        self.returncode = returncode
