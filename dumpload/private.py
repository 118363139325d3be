"""Private files: what dumpload creates is its user's alone.

Every file this package creates is 0600 and every folder it creates 0700. The modes are
asked for at creation (`os.open`, `os.mkdir`), so they hold for library users whatever
their umask (the CLI also sets umask 077). Backups, exports, logs and journals hold row
data, schema and hostnames: nobody else on the machine may read them.

Folders that already exist keep their mode: a user's folder is never chmod-ed (`doctor`
warns when `backup_dir` or `log_dir` is readable by others). Files dumpload itself appends
to (its histories and logs) are narrowed to 0600 when an older version left them wider.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import IO, Any

FILE_MODE = 0o600
DIR_MODE = 0o700
_FLAGS = {"w": os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
          "a": os.O_WRONLY | os.O_CREAT | os.O_APPEND,
          "x": os.O_WRONLY | os.O_CREAT | os.O_EXCL}


def make_dirs(path: Path) -> Path:
    """`mkdir -p path`: each folder created is 0700; existing ones are left as they are."""
    missing = []
    current = Path(path)
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            os.mkdir(folder, DIR_MODE)
    if not Path(path).is_dir():
        raise NotADirectoryError(f"{path} is not a folder")
    return Path(path)


def open_private(path: Path, mode: str = "w", encoding: str | None = "utf-8") -> IO[Any]:
    """`open(path, mode)` that creates the file 0600. `mode` is w, a or x, plus b for bytes.

    A file that exists keeps its mode, except that one opened to append (our logs) is
    narrowed to 0600 if it was wider.
    """
    binary = "b" in mode
    kind = mode.replace("b", "")
    fd = os.open(path, _FLAGS[kind] | getattr(os, "O_CLOEXEC", 0), FILE_MODE)
    try:
        if kind == "a" and os.fstat(fd).st_mode & 0o077:
            with contextlib.suppress(OSError):  # not ours to change: leave it
                os.fchmod(fd, FILE_MODE)
        if binary:
            return os.fdopen(fd, mode)
        return os.fdopen(fd, mode, encoding=encoding)
    except BaseException:
        os.close(fd)
        raise


def write_text(path: Path, text: str) -> None:
    """Create or replace `path` (0600 when created) with `text`."""
    with open_private(path, "w") as fh:
        fh.write(text)


def touch(path: Path) -> Path:
    """Create `path` empty and 0600 if missing (for handlers that open it themselves)."""
    open_private(path, "a").close()
    return path


def readable_by_others(path: Path) -> bool:
    """True when group or others may read `path` (a folder dumpload writes private data to)."""
    try:
        return bool(path.stat().st_mode & 0o044)
    except OSError:
        return False
