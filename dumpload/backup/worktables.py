"""Turn a backup's dump text into what a restore through work tables needs. Pure.

A restore never replays a table's DDL on the live name: it reads the table's
`CREATE TABLE` from the backup (`extract_create`), renames it to a work table
(`work_definition`: foreign keys and secondary indexes taken out of the text, to be added
at the swap and after the load, by the data copy's rule `shadow.deferred_index`), and
streams the table's `INSERT` statements into the work table (`InsertRenamer`: only the
statement prefix changes; rows never hold a raw newline, since the dump tools escape it,
so a line starting `INSERT INTO \\`t\\` VALUES` is a statement; `StatementSplitter` cuts
the renamed bytes into statements for a restore that sends them over a session).
Triggers (`parse_triggers`), views (`view_statement`) and routines/events keep their
text, with DEFINER rewritten to CURRENT_USER so an account without SUPER/SET USER can
restore them. No I/O here: restore.py feeds frames in and runs what comes out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from dumpload.backup.frames import is_sandbox_line
from dumpload.data.shadow import deferred_index
from dumpload.schema.model import Trigger
from dumpload.sqltext import quote
from dumpload.swap import trigger_from_sql

_CREATE = re.compile(rb"^CREATE TABLE (`(?:[^`]|``)+`) \(\n", re.M)
_INDEX_LINE = re.compile(r"^\s*(UNIQUE KEY|KEY|INDEX|UNIQUE INDEX)\s")
_FK_LINE = re.compile(r"^\s*CONSTRAINT\s+`(?:[^`]|``)+`\s+FOREIGN KEY\s")
_KEY_BY_UNIQUE = re.compile(r"PARTITION BY (LINEAR )?KEY\b[^(]*\(\)", re.I)
_AUTO_COL = re.compile(r"^\s*`((?:[^`]|``)+)`\s.*\bAUTO_INCREMENT\b")
_FIRST_COLUMN = re.compile(r"\(`((?:[^`]|``)+)`")
_REFERENCES = re.compile(r"\bREFERENCES\s+(`(?:[^`]|``)+`)(?:\.(`(?:[^`]|``)+`))?")
_DEFINER = re.compile(rb"DEFINER=(?:`(?:[^`]|``)*`|'[^']*'|\w+)@(?:`(?:[^`]|``)*`|'[^']*'|"
                      rb"[\w.%-]+)|DEFINER=CURRENT_USER(?:\(\))?")
_TRIGGER = re.compile(rb"/\*!50003 CREATE\*/ (?:/\*!50017 (DEFINER=.*?)\s*\*/ )?"
                      rb"/\*!50003 (.*?)\s*\*/;;(?=\r?\n)", re.S)
_SQL_MODE = re.compile(rb"SET sql_mode\s*=\s*'([^']*)'")
_VIEW = re.compile(rb"/\*!50001 CREATE (ALGORITHM=\w+) \*/\s*\n"
                   rb"(?:/\*!50013 (?:DEFINER=.*? )?(SQL SECURITY \w+) \*/\s*\n)?"
                   rb"/\*!50001 (VIEW .*?) \*/;\r?\n", re.S)


@dataclass(frozen=True)
class WorkDefinition:
    """The work table's CREATE and what is added to it later."""

    create_sql: str                      # CREATE TABLE `work` (...) without FKs, deferred keys
    index_clauses: list[str] = field(default_factory=list)   # ADD these after the load
    fk_clauses: list[str] = field(default_factory=list)      # the live table gets these
    parents: list[str] = field(default_factory=list)         # same-schema tables its FKs name


def extract_create(section: bytes) -> str | None:
    """The `CREATE TABLE` statement in a table's DDL section (None if there is none)."""
    match = _CREATE.search(section)
    if not match:
        return None
    # Column lines are indented: the first line starting with ")" closes the definition;
    # the statement runs on (table options, partitioning) to the first line ending in ";".
    close = section.find(b"\n)", match.end() - 1)
    end = section.find(b";\n", close) if close >= 0 else -1
    if end < 0:
        end = len(section.rstrip()) - 1 if section.rstrip().endswith(b";") else -1
    if close < 0 or end < 0:
        return None
    return section[match.start():end].decode("utf-8")


def work_definition(create: str, work: str) -> WorkDefinition:
    """The backup's CREATE renamed to `work`, FKs out, secondary B-tree indexes deferred.

    A dump holds text, not a live table to inspect, so this splits the text (the data
    copy plans its shadows from the schema model instead) with the data copy's rule
    (`shadow.deferred_index`): FULLTEXT/SPATIAL indexes, the index of the AUTO_INCREMENT
    column and a `PARTITION BY KEY ()` unique key stay. A partition clause (after the
    closing parenthesis, or in MySQL's `/*!50100 ... */`) is kept as is.
    """
    lines = create.splitlines()
    auto = next((m.group(1).replace("``", "`") for ln in lines if (m := _AUTO_COL.match(ln))),
                None)
    keep, indexes, fks = [], [], []
    by_key = bool(_KEY_BY_UNIQUE.search(create)) and not any(
        ln.strip().startswith("PRIMARY KEY") for ln in lines)
    for line in lines[1:]:
        body = line.strip().rstrip(",")
        index = _INDEX_LINE.match(line)
        first = _FIRST_COLUMN.search(body)
        if _FK_LINE.match(line):
            fks.append(body)
        elif index and deferred_index(
                "UNIQUE" if body.startswith("UNIQUE") else "INDEX",
                first.group(1).replace("``", "`") if first else None, auto, by_key):
            indexes.append(body)
        else:
            keep.append(line)
    create_sql = f"CREATE TABLE {quote(work)} (\n" + "\n".join(_fix_commas(keep))
    parents = []
    for clause in fks:
        m = _REFERENCES.search(clause)
        if m and not m.group(2):
            parents.append(m.group(1)[1:-1].replace("``", "`"))
    return WorkDefinition(create_sql, indexes, fks, parents)


def _fix_commas(lines: list[str]) -> list[str]:
    """After removing definition lines: every definition but the last ends with a comma."""
    close = next(i for i in range(len(lines) - 1, -1, -1) if lines[i].startswith(")"))
    defs = [ln.rstrip().rstrip(",") for ln in lines[:close]]
    return [d + "," for d in defs[:-1]] + defs[-1:] + lines[close:]


def rewrite_definer(text: bytes) -> bytes:
    """Every DEFINER=user@host becomes DEFINER=CURRENT_USER."""
    return _DEFINER.sub(b"DEFINER=CURRENT_USER", text)


def parse_triggers(section: bytes) -> list[Trigger]:
    """The triggers of a table's section, in firing order, each with the sql_mode the dump
    created it under (the definer is dropped: the swap creates them as the current user)."""
    out = []
    for order, m in enumerate(_TRIGGER.finditer(section), start=1):
        modes = _SQL_MODE.findall(section, 0, m.start())
        mode = modes[-1].decode("utf-8") if modes else ""
        out.append(trigger_from_sql(m.group(2).decode("utf-8"), mode, order))
    return out


def view_statement(section: bytes) -> str | None:
    """`CREATE OR REPLACE ... VIEW` from a view's final-structure section."""
    m = _VIEW.search(section)
    if not m:
        return None
    security = (b" " + m.group(2)) if m.group(2) else b""
    return (b"CREATE OR REPLACE " + m.group(1) + b" DEFINER=CURRENT_USER" + security + b" "
            + m.group(3)).decode("utf-8")


class InsertRenamer:
    """Stream filter: keep a table's INSERT statements, renamed to the work table.

    `inside=False` (a whole table section, as older backups hold it): bytes before the
    first `INSERT INTO` and from the `ENABLE KEYS` line on are dropped, so the section's
    DDL, LOCK TABLES and triggers never reach the live table. `inside=True` (a row frame,
    which holds only INSERT statements): everything passes, renamed.
    """

    def __init__(self, table: str, work: str, *, inside: bool) -> None:
        q = table.replace("`", "``").encode()
        self._old = b"\nINSERT INTO `" + q + b"` VALUES"
        self._new = b"\nINSERT INTO `" + work.replace("`", "``").encode() + b"` VALUES"
        self._end = b"\n/*!40000 ALTER TABLE `" + q + b"` ENABLE KEYS */;"
        self._hold = max(len(self._old), len(self._end))
        self._state = "inside" if inside else "before"
        self._carry = b"\n"  # a frame starts with its first statement, no newline before it

    def feed(self, chunk: bytes) -> bytes:
        data = self._carry + chunk
        if self._state == "done":
            self._carry = b""
            return b""
        if self._state == "before":
            i = data.find(self._old)
            if i < 0:
                self._carry = data[-self._hold:]
                return b""
            data, self._state = data[i:], "inside"
        end = data.find(self._end)
        if end >= 0:
            self._state, self._carry = "done", b""
            return data[:end + 1].replace(self._old, self._new)
        cut = max(0, len(data) - self._hold)
        cut = data.rfind(b"\n", 0, cut + 1) if cut else 0
        cut = max(cut, 0)
        self._carry = data[cut:]
        return data[:cut].replace(self._old, self._new)

    def close(self) -> bytes:
        rest, self._carry = (self._carry if self._state == "inside" else b""), b""
        return rest.replace(self._old, self._new)


class StatementSplitter:
    """Cut dump bytes into whole statements, for a restore that sends them over a session
    instead of piping them through the command-line client.

    A statement ends with `;` and a newline. The dump tools escape newlines inside values
    and break an extended `INSERT` only between rows (after `),`), so `;\\n` never occurs
    inside a statement: finding it is one scan per statement, not a loop per row. Comment
    lines (`-- ...`), blank lines and the sandbox line (a client command of newer MariaDB
    dumps, meaningless to the server) are dropped where a statement would start. Only dump
    text of that shape comes here: the header and row frames, never DELIMITER blocks
    (triggers, routines). `rename=(table, work)` puts `work` in the prefix of the
    table's `INSERT INTO` statements, as `InsertRenamer` does for a row frame.
    """

    def __init__(self, rename: tuple[str, str] | None = None) -> None:
        self._carry = b""
        self._old = self._new = b""
        if rename:
            self._old, self._new = (b"INSERT INTO `" + name.replace("`", "``").encode()
                                    + b"` VALUES" for name in rename)

    def feed(self, chunk: bytes) -> list[bytes]:
        data = self._carry + chunk if self._carry else chunk
        statements: list[bytes] = []
        start = 0
        while True:
            start = _skip_comment_lines(data, start)
            end = data.find(b";\n", start)
            if end < 0:
                break
            if self._old and data.startswith(self._old, start):
                statements.append(self._new + data[start + len(self._old):end + 1])
            else:
                statements.append(data[start:end + 1])
            start = end + 2
        self._carry = data[start:]
        return statements

    def close(self) -> list[bytes]:
        """What is left: one last statement without its newline, if any."""
        rest = self.feed(b"\n")
        left, self._carry = self._carry.strip(), b""
        return rest + ([left] if left else [])


def _skip_comment_lines(data: bytes, pos: int) -> int:
    """Where the first line at or after `pos` that is not a comment, a blank line or the
    sandbox line begins (or where an unfinished last line begins)."""
    while (nl := data.find(b"\n", pos)) >= 0:
        head = data[pos:min(nl, pos + 80)]
        if head.startswith(b"--") or is_sandbox_line(head) or (nl - pos < 80
                                                               and not head.strip()):
            pos = nl + 1
        else:
            break
    return pos
