"""Pure schema logic without a server: flavor normalisation (MySQL rows as literals),
type-change safety, diff ordering and SQL rendering."""

from __future__ import annotations

from dataclasses import replace

from dumpload.schema import flavor as fl
from dumpload.schema.diff import _longest_increasing, diff
from dumpload.schema.inspect import build_schema
from dumpload.schema.model import (
    Check,
    Column,
    ForeignKey,
    Index,
    IndexPart,
    Schema,
    Table,
    Trigger,
    View,
    quote,
)
from dumpload.schema.render import render_plan_text
from dumpload.schema.safety import column_change_safety, type_change_safety


def col_row(name: str, ctype: str, **kw: object) -> dict:
    row = {"TABLE_NAME": "t", "COLUMN_NAME": name, "COLUMN_TYPE": ctype,
           "DATA_TYPE": ctype.split("(")[0].split(" ")[0], "IS_NULLABLE": "YES",
           "COLUMN_DEFAULT": None, "EXTRA": "", "CHARACTER_SET_NAME": None,
           "COLLATION_NAME": None, "COLUMN_COMMENT": "", "GENERATION_EXPRESSION": ""}
    row.update(kw)
    return row


# --- flavor ---------------------------------------------------------------------------------

def test_integer_display_width_is_ignored() -> None:
    assert fl.normalize_type("int(11)") == fl.normalize_type("int") == "int"
    assert fl.normalize_type("int(10) unsigned") == "int unsigned"
    assert fl.normalize_type("bigint(20) unsigned zerofill") == "bigint(20) unsigned zerofill"
    assert fl.normalize_type("tinyint(1)") == "tinyint(1)"
    assert fl.normalize_type("year(4)") == "year"
    assert fl.normalize_type("enum('A','b')") == "enum('A','b')"


def test_current_timestamp_spellings() -> None:
    assert fl.normalize_expression("CURRENT_TIMESTAMP") == "current_timestamp()"
    assert fl.normalize_expression("current_timestamp()") == "current_timestamp()"
    assert fl.normalize_expression("CURRENT_TIMESTAMP(3)") == "current_timestamp(3)"
    assert fl.normalize_expression("now(6)") == "current_timestamp(6)"
    assert fl.on_update("DEFAULT_GENERATED on update CURRENT_TIMESTAMP(6)") == \
        "current_timestamp(6)"
    assert fl.on_update("on update current_timestamp()") == "current_timestamp()"


def test_mysql_and_mariadb_columns_compare_equal() -> None:
    pairs = [
        (col_row("a", "varchar(10)", COLUMN_DEFAULT="it's", CHARACTER_SET_NAME="utf8mb4",
                 COLLATION_NAME="utf8mb4_general_ci"),
         col_row("a", "varchar(10)", COLUMN_DEFAULT="'it''s'", CHARACTER_SET_NAME="utf8mb4",
                 COLLATION_NAME="utf8mb4_general_ci")),
        (col_row("n", "int", COLUMN_DEFAULT="5"), col_row("n", "int(11)", COLUMN_DEFAULT="5")),
        (col_row("z", "int"), col_row("z", "int(11)", COLUMN_DEFAULT="NULL")),
        (col_row("ts", "timestamp(3)", IS_NULLABLE="NO", COLUMN_DEFAULT="CURRENT_TIMESTAMP(3)",
                 EXTRA="DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)"),
         col_row("ts", "timestamp(3)", IS_NULLABLE="NO", COLUMN_DEFAULT="current_timestamp(3)",
                 EXTRA="on update current_timestamp(3)")),
        (col_row("u", "varchar(3)", CHARACTER_SET_NAME="utf8", COLLATION_NAME="utf8_bin"),
         col_row("u", "varchar(3)", CHARACTER_SET_NAME="utf8mb3",
                 COLLATION_NAME="utf8mb3_bin")),
        (col_row("g", "int", EXTRA="VIRTUAL GENERATED", GENERATION_EXPRESSION="(`a` + 1)"),
         col_row("g", "int(11)", EXTRA="VIRTUAL GENERATED", GENERATION_EXPRESSION="(`a` + 1)")),
    ]
    for mysql, mariadb in pairs:
        # MariaDB keeps display widths; compared with MySQL they are dropped (both sides).
        maria = fl.column_from_row(mariadb, "mariadb", {})
        assert fl.column_from_row(mysql, "mysql", {}) == replace(
            maria, type=fl.strip_display_width(maria.type))


def test_mariadb_json_is_json() -> None:
    maria = col_row("j", "longtext", CHARACTER_SET_NAME="utf8mb4", COLLATION_NAME="utf8mb4_bin")
    mysql = col_row("j", "json")
    a = fl.column_from_row(maria, "mariadb", {"j": "json_valid(`j`)"})
    b = fl.column_from_row(mysql, "mysql", {})
    assert a == b and a.type == "json" and a.check is None and a.charset is None
    plain = fl.column_from_row(maria, "mariadb", {})
    assert plain.type == "longtext"


def test_mysql_expression_default_from_show_create() -> None:
    ddl = ("CREATE TABLE `t` (\n  `id` int NOT NULL,\n"
           "  `u` varchar(40) DEFAULT (uuid()),\n"
           "  `s` varchar(9) DEFAULT (concat(_utf8mb4'a(',`id`)),\n"
           "  PRIMARY KEY (`id`)\n) ENGINE=InnoDB")
    assert fl.show_create_defaults(ddl) == {"u": "uuid()", "s": "concat(_utf8mb4'a(',`id`)"}
    rows = {"tables": [{"TABLE_NAME": "t", "TABLE_TYPE": "BASE TABLE", "ENGINE": "InnoDB",
                        "TABLE_COLLATION": "utf8mb4_0900_ai_ci", "CREATE_OPTIONS": "",
                        "TABLE_COMMENT": ""}],
            "columns": [col_row("u", "varchar(40)", COLUMN_DEFAULT="uuid()",
                                EXTRA="DEFAULT_GENERATED")],
            "show_create": [{"TABLE_NAME": "t", "CREATE": ddl}]}
    schema = build_schema("db", "mysql", (8, 0, 36), rows)
    assert schema.tables["t"].columns[0].default == "uuid()"
    assert schema.tables["t"].charset == "utf8mb4"
    assert fl.needs_show_create(rows["columns"], "mysql")
    assert not fl.needs_show_create(rows["columns"], "mariadb")


def test_index_visibility_and_fk_rules() -> None:
    base = {"TABLE_NAME": "t", "INDEX_NAME": "ix", "SEQ_IN_INDEX": 1, "COLUMN_NAME": "a",
            "NON_UNIQUE": 1, "INDEX_TYPE": "BTREE", "COLLATION": "D", "SUB_PART": None,
            "INDEX_COMMENT": ""}
    mysql = fl.indexes_from_rows([{**base, "IS_VISIBLE": "NO"}], "mysql")
    maria = fl.indexes_from_rows([{**base, "IGNORED": "YES"}], "mariadb")
    assert mysql == maria and mysql[0].invisible and mysql[0].parts[0].descending
    assert mysql[0].definition("mysql").endswith("INVISIBLE")
    assert maria[0].definition("mariadb").endswith("IGNORED")
    assert fl.fk_rule("NO ACTION") == fl.fk_rule("RESTRICT") == fl.fk_rule(None) == "RESTRICT"
    assert fl.fk_rule("set null") == "SET NULL"


def test_fk_columns_follow_ordinal_position_not_catalog_order() -> None:
    rows = [{"CONSTRAINT_NAME": "f", "COLUMN_NAME": "b", "ORDINAL_POSITION": 2,
             "REFERENCED_TABLE_SCHEMA": "db", "REFERENCED_TABLE_NAME": "p",
             "REFERENCED_COLUMN_NAME": "y", "UPDATE_RULE": "NO ACTION", "DELETE_RULE": "CASCADE"},
            {"CONSTRAINT_NAME": "f", "COLUMN_NAME": "a", "ORDINAL_POSITION": 1,
             "REFERENCED_TABLE_SCHEMA": "db", "REFERENCED_TABLE_NAME": "p",
             "REFERENCED_COLUMN_NAME": "x", "UPDATE_RULE": "NO ACTION", "DELETE_RULE": "CASCADE"}]
    fk = fl.foreign_key_from_rows("f", rows, "db")
    assert fk.columns == ("a", "b") and fk.ref_columns == ("x", "y") and fk.ref_schema is None
    assert fk.on_delete == "CASCADE" and fk.on_update == "RESTRICT"


def test_checks_and_options() -> None:
    assert fl.drop_check_sql("mariadb", "c") == "DROP CONSTRAINT `c`"
    assert fl.drop_check_sql("mysql", "c") == "DROP CHECK `c`"
    assert fl.check_from_row({"CONSTRAINT_NAME": "c", "CHECK_CLAUSE": "(`a` <> _utf8mb4\\'x\\')"},
                             "mysql").clause == "(`a` <> _utf8mb4'x')"
    assert fl.parse_create_options("row_format=COMPRESSED key_block_size=8 partitioned") == (
        ("KEY_BLOCK_SIZE", "8"), ("ROW_FORMAT", "COMPRESSED"))
    assert fl.reset_option("ROW_FORMAT") == "DEFAULT" and fl.reset_option("MAX_ROWS") == "0"
    assert fl.strip_schema("select `db`.`t`.`a` from `db`.`t`", "db") == "select `t`.`a` from `t`"
    avail = frozenset({"utf8mb4_uca1400_ai_ci", "utf8mb4_general_ci"})
    assert fl.target_collation("utf8mb4_0900_ai_ci", "mariadb", avail) == "utf8mb4_uca1400_ai_ci"


# --- safety ---------------------------------------------------------------------------------

def test_type_change_safety() -> None:
    safe = [("int", "bigint"), ("varchar(10)", "varchar(20)"), ("varchar(10)", "text"),
            ("decimal(10,2)", "decimal(12,3)"), ("enum('a','b')", "enum('a','b','c')"),
            ("datetime", "datetime(6)"), ("float", "double"), ("int unsigned", "bigint"),
            ("char(5)", "varchar(5)"), ("blob", "longblob"), ("tinyint(1)", "int")]
    unsafe = [("bigint", "int"), ("varchar(20)", "varchar(10)"), ("text", "varchar(100)"),
              ("decimal(10,2)", "decimal(10,1)"), ("enum('a','b')", "enum('a')"),
              ("datetime(6)", "datetime"), ("int", "int unsigned"), ("int", "varchar(5)"),
              ("set('a','b')", "set('b','a')")]
    for old, new in safe:
        assert type_change_safety(old, new)[0], (old, new)
    for old, new in unsafe:
        assert not type_change_safety(old, new)[0], (old, new)


def test_charset_change_is_unsafe_except_to_utf8mb4() -> None:
    a = Column("a", "varchar(5)", charset="utf8mb4", collation="utf8mb4_general_ci")
    b = Column("a", "varchar(5)", charset="latin1", collation="latin1_swedish_ci")
    assert not column_change_safety(a, b)[0]
    assert column_change_safety(b, a)[0]


# --- diff and render --------------------------------------------------------------------------

def table(name: str, *cols: Column, **kw: object) -> Table:
    return Table(name, tuple(cols), **kw)  # type: ignore[arg-type]


def C(name: str, ctype: str = "int", **kw: object) -> Column:  # noqa: N802
    return Column(name, ctype, **kw)  # type: ignore[arg-type]


def test_identical_schemas_give_an_empty_plan() -> None:
    s = Schema("db", tables={"t": table("t", C("id"))})
    plan = diff(s, s)
    assert plan.is_empty and plan.statements == () and "identical" in render_plan_text(plan)


def test_column_moves_are_the_fewest() -> None:
    pos = {n: i for i, n in enumerate("abcdef")}
    assert _longest_increasing(list("aebcdf"), pos) == list("abcdf")
    src = Schema("db", tables={"t": table("t", *(C(n) for n in "abcdef"))})
    dst = Schema("db", tables={"t": table("t", *(C(n) for n in "aebcdf"))})
    plan = diff(src, dst)
    assert plan.statements == ("ALTER TABLE `t`\n  MODIFY COLUMN `e` int NULL AFTER `d`",)
    assert [c.kind for c in plan.changes] == ["move_column"]


def test_order_of_phases_and_safety() -> None:
    parent = table("p", C("id", nullable=False),
                   indexes=(Index("PRIMARY", "PRIMARY", (IndexPart("id"),)),))
    child = table("c", C("id"), C("p_id", "bigint"),
                  foreign_keys=(ForeignKey("fk", ("p_id",), "p", ("id",)),),
                  checks=(Check("chk", "`id` > 0"),))
    src = Schema("db", tables={"p": parent, "c": child, "n": table("n", C("x"))},
                 views={"v": View("v", "select 1 AS `one`")},
                 triggers={"tr": Trigger("tr", "c", "BEFORE", "INSERT", "SET NEW.id = 1")})
    old_fk = ForeignKey("fk", ("p_id",), "p", ("id",), on_delete="CASCADE")
    old_child = table("c", C("id"), C("p_id"), C("gone"), foreign_keys=(old_fk,))
    dst = Schema("db", tables={"p": parent, "c": old_child, "old": table("old", C("x"))})
    plan = diff(src, dst)
    kinds = [s.phase for s in plan.steps]
    assert kinds == ["drop_constraint", "create_table", "alter_table", "add_foreign_key",
                     "drop_table", "create_view", "create_trigger"]
    assert {(c.table, c.kind) for c in plan.unsafe} == {("c", "drop_column"),
                                                        ("old", "drop_table")}
    assert plan.touched_tables == ("c", "old") and plan.created_tables == ("n",)
    assert plan.dropped_tables == ("old",)
    assert "DEFINER=CURRENT_USER" in plan.statements[-2]  # then back to the DDL sql_mode
    doc = plan.to_dict()
    assert doc["identical"] is False and len(doc["unsafe"]) == 2
    text = render_plan_text(plan)
    assert "unsafe changes (2" in text and "ALTER TABLE `c`" in text


def test_new_tables_in_dependency_order() -> None:
    a = table("a", C("id"), C("b_id"), foreign_keys=(ForeignKey("f1", ("b_id",), "b", ("id",)),))
    b = table("b", C("id"))
    plan = diff(Schema("db", tables={"a": a, "b": b}), Schema("db"))
    assert plan.created_tables == ("b", "a")


def test_awkward_identifiers_are_quoted() -> None:
    assert quote("a`b") == "`a``b`"
    col = C("my `col`", "varchar(5)", comment="it's \\ here")
    assert col.definition() == ("`my ``col``` varchar(5) NULL COMMENT 'it''s \\\\ here'")


def test_trigger_group_is_recreated_in_order() -> None:
    t1 = Trigger("one", "t", "BEFORE", "INSERT", "SET NEW.a = 1", order=1)
    t2 = Trigger("two", "t", "BEFORE", "INSERT", "SET NEW.a = 2", order=2)
    t2_changed = Trigger("two", "t", "BEFORE", "INSERT", "SET NEW.a = 3", order=2)
    tab = {"t": table("t", C("a"))}
    plan = diff(Schema("db", tables=tab, triggers={"one": t1, "two": t2}),
                Schema("db", tables=tab, triggers={"one": t1, "two": t2_changed}))
    assert [s.phase for s in plan.steps] == ["drop_trigger"] * 2 + ["create_trigger"] * 2
    assert "`one`" in plan.steps[2].sql and "`two`" in plan.steps[3].sql


def test_default_rendering() -> None:
    assert C("a", default="'x'").definition() == "`a` int NULL DEFAULT 'x'"
    assert C("a", default="uuid()").definition() == "`a` int NULL DEFAULT (uuid())"
    assert C("a", default="current_timestamp(3)").definition().endswith(
        "DEFAULT current_timestamp(3)")
    assert C("a", default="-1.5e3").definition().endswith("DEFAULT -1.5e3")


# --- flavor value object, index USING, byte limits ------------------------------------------

def test_flavor_value_object() -> None:
    from dumpload.flavor import Flavor
    maria = Flavor.of("mariadb", (10, 11, 6))
    mysql = Flavor.of("MySQL", (8, 0, 36))
    assert maria == "mariadb" and mysql == "mysql" and maria != mysql
    assert Flavor.of(maria) is maria and Flavor.of(None).is_mariadb
    assert maria.keeps_int_display_width and not mysql.keeps_int_display_width
    assert maria.check_drop_keyword == "CONSTRAINT" and mysql.check_drop_keyword == "CHECK"
    assert maria.has_instant_alter and not Flavor.of("mariadb", (10, 2, 0)).has_instant_alter
    assert Flavor.of("mysql").at_least(9, 0, 0)        # unknown version: the newest
    assert {maria: 1}["mariadb"] == 1                   # usable where a name was a key
    assert Schema("db", flavor="mysql", version=(8, 0, 1)).flavor.version == (8, 0, 1)


def test_display_widths_compared_only_between_mariadb_servers() -> None:
    def schema(flavor: str, ctype: str) -> Schema:
        return Schema("db", flavor=flavor, tables={"t": Table("t", (Column("a", ctype),))})
    assert diff(schema("mariadb", "int(4)"), schema("mariadb", "int(11)")).statements
    assert not diff(schema("mysql", "int"), schema("mariadb", "int(11)")).statements
    assert not diff(schema("mariadb", "int(11)"), schema("mysql", "int")).statements
    assert fl.normalize_type("int(4)", keep_width=True) == "int(4)"


def test_index_using_read_from_show_create() -> None:
    ddl = ("CREATE TABLE `t` (\n  `id` int(11) NOT NULL,\n  `c` varchar(9) DEFAULT NULL,\n"
           "  `b` text DEFAULT NULL,\n  PRIMARY KEY (`id`) USING BTREE,\n"
           "  UNIQUE KEY `u` (`b`) USING HASH,\n  KEY `k``x` (`c`(3)) USING HASH COMMENT 'a',\n"
           "  KEY `plain` (`c`)\n) ENGINE=InnoDB")
    assert fl.index_using(ddl) == {"PRIMARY": "BTREE", "u": "HASH", "k`x": "HASH"}
    idx = Index("k", "INDEX", (IndexPart("c"),), using="HASH")
    assert idx.definition() == "KEY `k` (`c`) USING HASH"


def test_charset_changes_must_fit_their_bytes() -> None:
    def col(ctype: str, charset: str) -> Column:
        return Column("c", ctype, charset=charset, collation=f"{charset}_bin")
    assert not column_change_safety(col("text", "latin1"), col("text", "utf8mb4"))[0]
    assert column_change_safety(col("text", "latin1"), col("mediumtext", "utf8mb4"))[0]
    assert column_change_safety(col("text", "utf8mb3"), col("text", "utf8mb4"))[0]
    assert column_change_safety(col("varchar(100)", "latin1"), col("varchar(100)", "utf8mb4"))[0]
    wide = column_change_safety(col("varchar(20000)", "latin1"), col("varchar(20000)", "utf8mb4"))
    assert not wide[0] and "row limit" in wide[1]
    table = Table("t", (col("varchar(1000)", "utf8mb4"),),
                  (Index("ik", "INDEX", (IndexPart("c"),)),))
    keyed = column_change_safety(col("varchar(1000)", "latin1"), col("varchar(1000)", "utf8mb4"),
                                 table)
    assert not keyed[0] and "3072-byte key limit" in keyed[1]
    assert not column_change_safety(col("varchar(10)", "utf8mb4"), col("varchar(10)", "latin1"))[0]


def test_trigger_sql_mode_is_compared_and_kept() -> None:
    def schema(mode: str) -> Schema:
        t = Table("t", (Column("a", "int"),))
        tr = Trigger("tr", "t", "BEFORE", "INSERT", "SET NEW.a = 1", sql_mode=mode)
        return Schema("db", tables={"t": t}, triggers={"tr": tr})
    plan = diff(schema("STRICT_ALL_TABLES,PIPES_AS_CONCAT"), schema("PIPES_AS_CONCAT"))
    assert plan.statements[1:] == (
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,PIPES_AS_CONCAT'",
        "CREATE DEFINER=CURRENT_USER TRIGGER `tr` BEFORE INSERT ON `t` FOR EACH ROW "
        "SET NEW.a = 1",
        "SET SESSION sql_mode = 'STRICT_ALL_TABLES,NO_AUTO_VALUE_ON_ZERO,NO_ENGINE_SUBSTITUTION'")
    assert [d.what for d in plan.differences] == ["sql_mode differs"]
    assert not diff(schema("A,B"), schema("B,A")).statements
