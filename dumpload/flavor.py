"""The server flavor as one value: "mariadb" or "mysql", its version, and what follows.

Every "does this server do X" question the code asks is a predicate here, so no module
compares flavor strings or version tuples itself. A `Flavor` still compares equal to its
name (`Flavor.of("mariadb") == "mariadb"`), so code and tests that pass plain strings keep
working while they move over; `Flavor.of` accepts either. Pure, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass

Version = tuple[int, int, int]


@dataclass(frozen=True, eq=False)
class Flavor:
    name: str = "mariadb"            # "mariadb" or "mysql"
    version: Version = (0, 0, 0)     # (0, 0, 0): unknown, read as the newest release

    @classmethod
    def of(cls, value: Flavor | str | None, version: Version | None = None) -> Flavor:
        """A Flavor from a Flavor, a name ("mariadb"/"mysql") or None (MariaDB)."""
        if isinstance(value, Flavor):
            return value if version is None else cls(value.name, tuple(version))  # type: ignore
        name = (value or "mariadb").lower()
        if name not in ("mariadb", "mysql"):
            raise ValueError(f"unknown server flavor {value!r}")
        return cls(name, tuple(version) if version else (0, 0, 0))  # type: ignore[arg-type]

    # -- identity --------------------------------------------------------------------------
    @property
    def is_mariadb(self) -> bool:
        return self.name == "mariadb"

    @property
    def is_mysql(self) -> bool:
        return self.name == "mysql"

    def at_least(self, *version: int) -> bool:
        """Version ≥ the given one; an unknown version counts as the newest."""
        return self.version == (0, 0, 0) or self.version >= tuple(version)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, str):
            return self.name == other.lower()
        if isinstance(other, Flavor):
            return (self.name, self.version) == (other.name, other.version)
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.name)

    def __str__(self) -> str:
        return self.name

    def describe(self) -> str:
        label = "MariaDB" if self.is_mariadb else "MySQL"
        return f"{label} {'.'.join(map(str, self.version))}"

    # -- catalog quirks ----------------------------------------------------------------------
    @property
    def keeps_int_display_width(self) -> bool:
        """MariaDB shows `int(11)` and `int(4)` and keeps them apart; MySQL 8.0.19+ hides
        widths (except `tinyint(1)` and ZEROFILL), so on MySQL they are never compared."""
        return self.is_mariadb

    @property
    def check_drop_keyword(self) -> str:
        """MariaDB drops a CHECK with DROP CONSTRAINT; MySQL 8.0.16+ with DROP CHECK."""
        return "CONSTRAINT" if self.is_mariadb else "CHECK"

    @property
    def invisible_index_keyword(self) -> str:
        return "IGNORED" if self.is_mariadb else "INVISIBLE"

    @property
    def generated_column_takes_not_null(self) -> bool:
        """MySQL accepts NOT NULL on a generated column; MariaDB refuses it."""
        return self.is_mysql

    @property
    def check_names_per_table(self) -> bool:
        """MariaDB scopes CHECK constraint names to their table; MySQL to the schema."""
        return self.is_mariadb

    @property
    def column_checks_inline(self) -> bool:
        """MariaDB keeps column-level CHECKs with the column (LEVEL = Column)."""
        return self.is_mariadb

    # -- DDL capabilities ----------------------------------------------------------------------
    @property
    def has_instant_alter(self) -> bool:
        """ALGORITHM=INSTANT exists: MariaDB 10.3+, MySQL 8.0.12+."""
        return self.at_least(10, 3, 0) if self.is_mariadb else self.at_least(8, 0, 12)

    @property
    def has_recursive_cte(self) -> bool:
        return self.at_least(10, 2, 2) if self.is_mariadb else self.at_least(8, 0, 1)


MARIADB = Flavor("mariadb")
MYSQL = Flavor("mysql")
