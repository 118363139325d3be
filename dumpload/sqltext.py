"""SQL text helpers shared by every module that writes statements."""

from __future__ import annotations

import re


def quote(name: str) -> str:
    """A backtick-quoted identifier (backticks inside doubled): safe for any table,
    column or index name, including spaces, reserved words and non-ASCII."""
    return "`" + name.replace("`", "``") + "`"


STATEMENT_KEEP = 200  # characters of a failing statement quoted in messages and logs

# Literals, in the order they are tried at one position. Backticked identifiers are kept
# as they are (a name like `'abc'` is not a value); everything else here is a value.
_TOKEN = re.compile(r"""
    (?P<ident>`(?:[^`]|``)*`?)                                  # `identifier`
  | (?P<hex>[xXbB]'[^']*'?)                                     # X'0A1B', B'0101'
  | (?P<str>(?:_[A-Za-z0-9]+\s*)?'(?:[^'\\]|\\.|'')*(?:'|\Z))   # [_charset]'...' (\' and '')
  | (?P<dstr>(?:_[A-Za-z0-9]+\s*)?"(?:[^"\\]|\\.|"")*(?:"|\Z))  # "..." (a string by default)
  | (?P<word>[A-Za-z_$@][A-Za-z0-9_$@]*)                        # keywords, names, @vars
  | (?P<num>0[xX][0-9A-Fa-f]+|0[bB][01]+                        # 0x1F, 0b101
        |(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)                  # 12, 1.5, .5, 1e-3
""", re.VERBOSE | re.DOTALL)


def elide_values(sql: str, keep: int = STATEMENT_KEEP) -> str:
    """`sql` with every literal value replaced by `?`, cut to `keep` characters (pure).

    For quoting a statement in an error or a log line: names and keywords stay (so the
    reader sees which statement failed), strings, numbers, hex and bit literals go (so
    no row value ever reaches a log). Identifiers in backticks are kept even when they
    look like strings or numbers; `t1` is a name, not a number.
    """
    out: list[str] = []
    size = 0
    pos = 0
    text = sql[: keep * 8]  # a literal longer than this is elided to the end anyway
    while pos < len(text) and size <= keep:
        match = _TOKEN.match(text, pos)
        if match is None:
            piece, pos = text[pos], pos + 1
        else:
            kind = match.lastgroup
            piece = match.group() if kind in ("ident", "word") else "?"
            pos = match.end()
        out.append(piece)
        size += len(piece)
    flat = " ".join("".join(out).split())
    cut = len(sql) > len(text) or pos < len(text) or len(flat) > keep
    return flat[:keep] + ("…" if cut else "")


# Server messages that quote a row value. Greedy on purpose: a value may itself hold
# "' for key", so everything up to the template's last fixed words goes.
_VALUE_IN_MESSAGE = [
    re.compile(r"(Duplicate entry )'.*'( for key )", re.IGNORECASE),
    re.compile(r"(value: )'.*'( for column )", re.IGNORECASE),   # Incorrect integer value: 'v'
    re.compile(r"(value: )'.*'()$", re.IGNORECASE),             # Truncated incorrect X value: 'v'
    re.compile(r"(record )'.*'( would lead )", re.IGNORECASE),   # FK duplicate with child info
]
# Messages that echo a statement: syntax errors ("near '...' at line 1") and the dump
# tool's "Couldn't execute '...': <error>".
_STATEMENT_IN_MESSAGE = [
    re.compile(r"(near )'(.*)'( at line \d+)", re.IGNORECASE),
    re.compile(r"(near )'(.*)'()$", re.IGNORECASE),
    re.compile(r"(execute )'(.*?)'(: )", re.IGNORECASE),
]


# The client prints a failing statement of a script between two lines of dashes:
# "--------------\nINSERT INTO ... VALUES (...)\n--------------\n\nERROR 1062 ...".
_ECHOED_STATEMENT = re.compile(r"^(-{14}\n)(.*?)(\n-{14}|\Z)", re.MULTILINE | re.DOTALL)


def elide_message(text: str) -> str:
    """A server or tool message with the row values it quotes replaced by `?`, and any
    statement it echoes passed through `elide_values` (pure). Line by line, so a value
    never hides the next line's message."""
    text = _ECHOED_STATEMENT.sub(lambda m: f"{m[1]}{elide_values(m[2])}{m[3]}", text)
    return "\n".join(_elide_line(line) for line in text.split("\n"))


def _elide_line(line: str) -> str:
    for pattern in _STATEMENT_IN_MESSAGE:
        line = pattern.sub(lambda m: f"{m[1]}'{elide_values(m[2])}'{m[3]}", line)
    for pattern in _VALUE_IN_MESSAGE:
        line = pattern.sub(lambda m: f"{m[1]}?{m[2]}", line)
    return line
