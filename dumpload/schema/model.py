"""The schema model: frozen dataclasses keyed by name, already normalised by `flavor`.

Each object renders its own SQL (`definition`, `create_sql`), so the diff compares
normalised values and the plan reuses the source's rendering. No I/O here.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from dumpload.flavor import MARIADB, Flavor
from dumpload.schema.partitions import Partitioning
from dumpload.schema.routines import Event, Routine
from dumpload.sqltext import quote


def literal(text: str) -> str:
    """A single-quoted string literal, safe under the default sql_mode and ANSI modes alike."""
    return "'" + text.replace("\\", "\\\\").replace("'", "''") + "'"


@dataclass(frozen=True)
class Column:
    name: str
    type: str                      # canonical: lower case, `int` not `int(11)`, `json`
    nullable: bool = True
    default: str | None = None     # SQL text after DEFAULT (literals quoted); None: no clause
    on_update: str | None = None   # e.g. "current_timestamp(3)"
    auto_increment: bool = False
    charset: str | None = None     # effective (explicit or inherited) for character types
    collation: str | None = None
    comment: str = ""
    generated: str | None = None   # generation expression
    stored: bool = False           # generated STORED (else VIRTUAL)
    invisible: bool = False
    check: str | None = None       # MariaDB column-level CHECK clause

    def definition(self, flavor: Flavor | str = MARIADB) -> str:
        """The column definition as in CREATE TABLE / ADD COLUMN / MODIFY COLUMN."""
        flavor = Flavor.of(flavor)
        parts = [quote(self.name), self.type]
        if self.charset and self.type != "json":
            parts.append(f"CHARACTER SET {self.charset} COLLATE {self.collation}")
        if self.generated is not None:
            kind = "STORED" if self.stored else "VIRTUAL"
            parts.append(f"GENERATED ALWAYS AS ({self.generated}) {kind}")
            if not self.nullable and flavor.generated_column_takes_not_null:
                parts.append("NOT NULL")
        else:
            parts.append("NULL" if self.nullable else "NOT NULL")
            if self.default is not None and not self.auto_increment:
                parts.append(f"DEFAULT {render_default(self.default)}")
            if self.on_update:
                parts.append(f"ON UPDATE {self.on_update}")
            if self.auto_increment:
                parts.append("AUTO_INCREMENT")
        if self.invisible:
            parts.append("INVISIBLE")
        if self.comment:
            parts.append(f"COMMENT {literal(self.comment)}")
        if self.check:
            parts.append(f"CHECK ({self.check})")
        return " ".join(parts)


def is_literal_default(value: str) -> bool:
    """Quoted strings, numbers, NULL, bit/hex literals and CURRENT_TIMESTAMP print bare."""
    import re
    return bool(re.fullmatch(
        r"NULL|'.*'|-?[0-9.]+(e[-+]?[0-9]+)?|b'[01]*'|0x[0-9a-fA-F]*|x'[0-9a-fA-F]*'"
        r"|current_timestamp(\(\d?\))?", value, re.S | re.I))


def render_default(value: str) -> str:
    # Any other expression must be parenthesised to be accepted by MySQL 8 and MariaDB.
    return value if is_literal_default(value) else f"({value})"


@dataclass(frozen=True)
class IndexPart:
    column: str | None
    sub_part: int | None = None
    descending: bool = False
    expression: str | None = None  # MySQL functional index part

    def sql(self) -> str:
        text = f"({self.expression})" if self.expression else quote(self.column or "")
        if self.sub_part:
            text += f"({self.sub_part})"
        return text + (" DESC" if self.descending else "")


@dataclass(frozen=True)
class Index:
    name: str
    kind: str                       # PRIMARY, UNIQUE, INDEX, FULLTEXT, SPATIAL
    parts: tuple[IndexPart, ...]
    comment: str = ""
    invisible: bool = False
    parser: str | None = None       # FULLTEXT WITH PARSER
    using: str | None = None        # explicit USING BTREE/HASH/RTREE (from SHOW CREATE TABLE)

    @property
    def columns(self) -> tuple[str, ...]:
        return tuple(p.column for p in self.parts if p.column)

    def definition(self, flavor: Flavor | str = MARIADB) -> str:
        cols = "(" + ", ".join(p.sql() for p in self.parts) + ")"
        head = {"PRIMARY": "PRIMARY KEY", "UNIQUE": f"UNIQUE KEY {quote(self.name)}",
                "FULLTEXT": f"FULLTEXT KEY {quote(self.name)}",
                "SPATIAL": f"SPATIAL KEY {quote(self.name)}"}.get(
                    self.kind, f"KEY {quote(self.name)}")
        text = f"{head} {cols}"
        if self.using:
            text += f" USING {self.using}"
        if self.parser:
            text += f" WITH PARSER {self.parser}"
        if self.comment:
            text += f" COMMENT {literal(self.comment)}"
        if self.invisible:
            text += " " + Flavor.of(flavor).invisible_index_keyword
        return text


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: tuple[str, ...]
    ref_table: str
    ref_columns: tuple[str, ...]
    ref_schema: str | None = None   # None: the same schema as the table
    on_delete: str = "RESTRICT"     # RESTRICT == NO ACTION == omitted
    on_update: str = "RESTRICT"

    def definition(self) -> str:
        ref = quote(self.ref_table)
        if self.ref_schema:
            ref = f"{quote(self.ref_schema)}.{ref}"
        text = (f"CONSTRAINT {quote(self.name)} FOREIGN KEY "
                f"({', '.join(map(quote, self.columns))}) REFERENCES {ref} "
                f"({', '.join(map(quote, self.ref_columns))})")
        if self.on_delete != "RESTRICT":
            text += f" ON DELETE {self.on_delete}"
        if self.on_update != "RESTRICT":
            text += f" ON UPDATE {self.on_update}"
        return text


@dataclass(frozen=True)
class Check:
    name: str
    clause: str

    def definition(self) -> str:
        return f"CONSTRAINT {quote(self.name)} CHECK ({self.clause})"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    indexes: tuple[Index, ...] = ()
    foreign_keys: tuple[ForeignKey, ...] = ()
    checks: tuple[Check, ...] = ()
    engine: str | None = "InnoDB"
    charset: str | None = None
    collation: str | None = None
    comment: str = ""
    options: tuple[tuple[str, str], ...] = ()   # explicit CREATE_OPTIONS, sorted
    partitioned: bool = False
    partitioning: Partitioning | None = None
    # Clauses the model cannot represent ("not supported: ..."): the table's changes are
    # refused rather than planned without them.
    unsupported: tuple[str, ...] = ()
    # Index and CHECK names in the server's order (SHOW CREATE TABLE; the tuples above are
    # sorted by name): not compared, only for a CREATE the server prints alike
    # (`in_server_order`).
    index_order: tuple[str, ...] = field(default=(), compare=False)
    check_order: tuple[str, ...] = field(default=(), compare=False)
    # The server's own partition clause when the model cannot represent it (`unsupported`):
    # not compared; a data copy's shadow is partitioned with it as is.
    partition_text: str | None = field(default=None, compare=False)

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    def options_sql(self) -> list[str]:
        out = []
        if self.engine:
            out.append(f"ENGINE={self.engine}")
        if self.charset:
            out.append(f"DEFAULT CHARSET={self.charset} COLLATE={self.collation}")
        out += [f"{k.upper()}={v}" for k, v in self.options]
        if self.comment:
            out.append(f"COMMENT={literal(self.comment)}")
        return out

    def in_server_order(self) -> Table:
        """This table with its indexes and checks in the server's order (where known)."""
        def rank(order: tuple[str, ...]) -> Callable[[Index | Check], int]:
            where = {n: i for i, n in enumerate(order)}
            return lambda x: where.get(x.name, len(where))
        return replace(self, indexes=tuple(sorted(self.indexes, key=rank(self.index_order))),
                       checks=tuple(sorted(self.checks, key=rank(self.check_order))))

    def create_sql(self, flavor: Flavor | str = MARIADB, name: str | None = None) -> str:
        body = [c.definition(flavor) for c in self.columns]
        body += [i.definition(flavor) for i in self.indexes]
        body += [f.definition() for f in self.foreign_keys]
        body += [c.definition() for c in self.checks]
        inner = ",\n  ".join(body)
        text = (f"CREATE TABLE {quote(name or self.name)} (\n  {inner}\n) "
                + " ".join(self.options_sql()))
        return text + ("\n" + self.partitioning.clause() if self.partitioning else "")


@dataclass(frozen=True)
class View:
    name: str
    definition: str                 # SELECT text, own-schema qualifiers removed
    check_option: str = "NONE"      # NONE, CASCADED, LOCAL
    security: str = "DEFINER"
    algorithm: str = "UNDEFINED"
    definer: str = ""

    def create_sql(self, keep_definer: bool = False) -> str:
        definer = self.definer_sql(keep_definer)
        text = (f"CREATE OR REPLACE ALGORITHM={self.algorithm} DEFINER={definer} "
                f"SQL SECURITY {self.security} VIEW {quote(self.name)} AS {self.definition}")
        if self.check_option and self.check_option != "NONE":
            text += f" WITH {self.check_option} CHECK OPTION"
        return text

    def definer_sql(self, keep: bool) -> str:
        return quote_account(self.definer) if keep and self.definer else "CURRENT_USER"


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    timing: str                     # BEFORE / AFTER
    event: str                      # INSERT / UPDATE / DELETE
    statement: str
    order: int = 1
    definer: str = ""
    sql_mode: str = ""

    def create_sql(self, keep_definer: bool = False) -> str:
        definer = quote_account(self.definer) if keep_definer and self.definer \
            else "CURRENT_USER"
        return (f"CREATE DEFINER={definer} TRIGGER {quote(self.name)} {self.timing} "
                f"{self.event} ON {quote(self.table)} FOR EACH ROW {self.statement}")


def quote_account(account: str) -> str:
    """`user@host` (as in the catalog) → `'user'@'host'`."""
    user, _, host = account.rpartition("@")
    return f"{literal(user)}@{literal(host)}" if user else literal(account)


@dataclass(frozen=True)
class Schema:
    database: str
    flavor: Flavor = field(default_factory=Flavor)   # a name ("mysql") is turned into one
    version: tuple[int, int, int] = (0, 0, 0)
    tables: dict[str, Table] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    ignored: tuple[str, ...] = ()   # objects seen but not compared (sequences, ...), why
    # FKs of tables outside the selection that reference selected tables: (table, fk).
    inbound: tuple[tuple[str, ForeignKey], ...] = ()
    routines: dict[str, Routine] = field(default_factory=dict)   # by "PROCEDURE name"
    events: dict[str, Event] = field(default_factory=dict)       # by "EVENT name"

    def object_counts(self) -> dict[str, int]:
        """How many of each kind of object the schema holds (`verify` compares these)."""
        kinds = [r.kind.lower() for r in self.routines.values()]
        return {"tables": len(self.tables), "views": len(self.views),
                "triggers": len(self.triggers), "procedures": kinds.count("procedure"),
                "functions": kinds.count("function"), "events": len(self.events)}

    def __post_init__(self) -> None:
        if not isinstance(self.flavor, Flavor) or self.version != (0, 0, 0):
            object.__setattr__(self, "flavor", Flavor.of(
                self.flavor, version3(self.version) if self.version != (0, 0, 0) else None))


def version3(version: Sequence[int]) -> tuple[int, int, int]:
    """(major, minor, patch) from a version of any length (a list read back from JSON)."""
    major, minor, patch = (list(version) + [0, 0, 0])[:3]
    return major, minor, patch
