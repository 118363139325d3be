"""Partitioning without a server: catalog rows → model, the self-check, and the planner."""

from __future__ import annotations

from dataclasses import replace

from dumpload.backup.worktables import work_definition
from dumpload.schema.partitions import (
    Partition,
    Partitioning,
    normalize_clause,
    partition_clause,
    partitioning_from_rows,
    plan_partitioning,
)


def rows(method: str, expr: str, parts: list[tuple[str, str | None]], **extra: object) -> list:
    return [{"TABLE_NAME": "t", "PARTITION_NAME": name, "SUBPARTITION_NAME": None,
             "PARTITION_ORDINAL_POSITION": i + 1, "SUBPARTITION_ORDINAL_POSITION": None,
             "PARTITION_METHOD": method, "SUBPARTITION_METHOD": None,
             "PARTITION_EXPRESSION": expr, "SUBPARTITION_EXPRESSION": None,
             "PARTITION_DESCRIPTION": desc, "PARTITION_COMMENT": "", **extra}
            for i, (name, desc) in enumerate(parts)]


MARIADB_RANGE = """CREATE TABLE `t` (
  `id` int(11) NOT NULL
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci
 PARTITION BY RANGE (`id`)
(PARTITION `p0` VALUES LESS THAN (10) ENGINE = InnoDB,
 PARTITION `pmax` VALUES LESS THAN MAXVALUE ENGINE = InnoDB)"""

MYSQL_RANGE = """CREATE TABLE `t` (
  `id` int NOT NULL,
  PRIMARY KEY (`id`),
  KEY `ix` (`id`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_0900_ai_ci COMMENT='PARTITION BY x'
/*!50100 PARTITION BY RANGE (`id`)
(PARTITION p0 VALUES LESS THAN (10) ENGINE = InnoDB,
 PARTITION pmax VALUES LESS THAN MAXVALUE ENGINE = InnoDB) */"""


def range_model() -> Partitioning:
    model, unsupported = partitioning_from_rows(
        rows("RANGE", "`id`", [("p0", "10"), ("pmax", "MAXVALUE")]), MARIADB_RANGE)
    assert unsupported == ()
    assert model is not None
    return model


def test_range_from_catalog_renders_the_servers_clause() -> None:
    model = range_model()
    assert model.clause() == ("PARTITION BY RANGE (`id`)\n(PARTITION `p0` VALUES LESS THAN "
                              "(10),\n PARTITION `pmax` VALUES LESS THAN MAXVALUE)")
    # MySQL's version comment, unquoted names and a COMMENT mentioning PARTITION BY.
    mysql, unsupported = partitioning_from_rows(
        rows("RANGE", "`id`", [("p0", "10"), ("pmax", "MAXVALUE")]), MYSQL_RANGE)
    assert unsupported == () and mysql == model
    assert partition_clause(MYSQL_RANGE).startswith("PARTITION BY RANGE")
    assert partition_clause(MYSQL_RANGE).endswith("ENGINE = InnoDB)")


def test_unpartitioned_rows_give_no_model() -> None:
    assert partitioning_from_rows([{"PARTITION_NAME": None}]) == (None, ())


def test_list_default_partition_is_read_from_show_create() -> None:
    create = MARIADB_RANGE.replace("RANGE (`id`)", "LIST (`id`)").replace(
        "VALUES LESS THAN (10)", "VALUES IN (1,2)").replace(
        "VALUES LESS THAN MAXVALUE", "DEFAULT")
    model, unsupported = partitioning_from_rows(
        rows("LIST", "`id`", [("p0", "1,2"), ("pmax", "0")]), create)
    assert unsupported == ()
    assert model is not None and model.partitions[1].values == "DEFAULT"


def test_clauses_the_model_lacks_are_not_supported() -> None:
    create = MARIADB_RANGE.replace("(10) ENGINE", "(10) DATA DIRECTORY = '/d' ENGINE")
    _, unsupported = partitioning_from_rows(
        rows("RANGE", "`id`", [("p0", "10"), ("pmax", "MAXVALUE")]), create)
    assert unsupported and unsupported[0].startswith("not supported: ")
    assert unsupported[0] == ("not supported: PARTITION `p0` VALUES LESS THAN (10) "
                              "DATA DIRECTORY = '/d'")
    _, unsupported = partitioning_from_rows(
        rows("SYSTEM_TIME", "", [("p_hist", None), ("p_cur", "CURRENT")]))
    assert unsupported == ("not supported: PARTITION BY SYSTEM_TIME",)


def test_normalize_clause_ignores_engines_quotes_and_spacing() -> None:
    assert normalize_clause("/*!50100 PARTITION BY HASH (`id`)\nPARTITIONS 4 */") == \
        normalize_clause("PARTITION BY HASH(id) PARTITIONS 4")


def sqls(changes: object) -> list[str]:
    return [sql for sql, _ in changes.before + changes.after]  # type: ignore[attr-defined]


def unsafe(changes: object) -> list[str]:
    return [i[1] for _, items in changes.before + changes.after  # type: ignore[attr-defined]
            for i in items if not i[2]]


def test_range_add_split_merge_and_drop() -> None:
    t = range_model()
    s = replace(t, partitions=(t.partitions[0], Partition("p1", "20"), t.partitions[1]))
    assert sqls(plan_partitioning("t", s, t, False)) == [
        "ALTER TABLE `t` REORGANIZE PARTITION `pmax` INTO (PARTITION `p1` VALUES LESS THAN "
        "(20), PARTITION `pmax` VALUES LESS THAN MAXVALUE)"]
    assert sqls(plan_partitioning("t", t, s, False)) == [
        "ALTER TABLE `t` REORGANIZE PARTITION `p1`, `pmax` INTO (PARTITION `pmax` VALUES "
        "LESS THAN MAXVALUE)"]
    bounded = replace(t, partitions=t.partitions[:1])
    grown = replace(t, partitions=(t.partitions[0], Partition("p1", "20")))
    add = plan_partitioning("t", grown, bounded, False)
    assert sqls(add) == ["ALTER TABLE `t` ADD PARTITION (PARTITION `p1` VALUES LESS THAN (20))"]
    assert unsafe(add) == []
    drop = plan_partitioning("t", bounded, grown, False)
    assert sqls(drop) == ["ALTER TABLE `t` DROP PARTITION `p1`"] and unsafe(drop) == ["p1"]


def test_range_top_bound_lowered_needs_a_full_partition_by() -> None:
    t = replace(range_model(), partitions=(Partition("p0", "10"), Partition("p1", "30")))
    s = replace(t, partitions=(Partition("p0", "10"), Partition("p1", "20")))
    assert sqls(plan_partitioning("t", s, t, False))[0].startswith(
        "ALTER TABLE `t` PARTITION BY RANGE (`id`)")
    # Raising it is a REORGANIZE of the last partition (the server extends the range).
    assert "REORGANIZE PARTITION `p1`" in sqls(plan_partitioning("t", t, s, False))[0]


def test_list_groups_by_shared_values() -> None:
    t = Partitioning("LIST", "`r`", (Partition("a", "1,2"), Partition("b", "3,4"),
                                       Partition("c", "8")))
    s = Partitioning("LIST", "`r`", (Partition("a", "1,2,3"), Partition("b", "4"),
                                       Partition("d", "5")))
    out = plan_partitioning("t", s, t, False)
    assert sqls(out) == [
        "ALTER TABLE `t` DROP PARTITION `c`",
        "ALTER TABLE `t` REORGANIZE PARTITION `a`, `b` INTO (PARTITION `a` VALUES IN (1,2,3), "
        "PARTITION `b` VALUES IN (4))",
        "ALTER TABLE `t` ADD PARTITION (PARTITION `d` VALUES IN (5))"]
    assert unsafe(out) == ["c"]
    # Value order inside VALUES IN and partition order mean nothing for LIST.
    shuffled = Partitioning("LIST", "`r`", (Partition("b", "4,3"), Partition("a", "2,1"),
                                              Partition("c", "8")))
    assert sqls(plan_partitioning("t", shuffled, t, False)) == []


def test_list_default_takes_new_values_out_of_the_default_partition() -> None:
    t = Partitioning("LIST", "`r`", (Partition("a", "1"), Partition("o", "DEFAULT")))
    s = Partitioning("LIST", "`r`", (Partition("a", "1"), Partition("n", "9"),
                                       Partition("o", "DEFAULT")))
    assert sqls(plan_partitioning("t", s, t, False)) == [
        "ALTER TABLE `t` REORGANIZE PARTITION `o` INTO (PARTITION `n` VALUES IN (9), "
        "PARTITION `o` DEFAULT)"]


def test_hash_counts_and_schemes() -> None:
    two = Partitioning("HASH", "`id`", (Partition("p0"), Partition("p1")))
    five = replace(two, partitions=tuple(Partition(f"p{i}") for i in range(5)))
    assert sqls(plan_partitioning("t", five, two, False)) == [
        "ALTER TABLE `t` ADD PARTITION PARTITIONS 3"]
    assert sqls(plan_partitioning("t", two, five, False)) == [
        "ALTER TABLE `t` COALESCE PARTITION 3"]
    assert five.clause() == "PARTITION BY HASH (`id`)\nPARTITIONS 5"
    linear_key = Partitioning("KEY", "", two.partitions, linear=True)
    assert linear_key.clause() == "PARTITION BY LINEAR KEY ()\nPARTITIONS 2"
    assert sqls(plan_partitioning("t", linear_key, two, True)) == [
        "ALTER TABLE `t` REMOVE PARTITIONING",
        "ALTER TABLE `t` PARTITION BY LINEAR KEY ()\nPARTITIONS 2"]
    assert sqls(plan_partitioning("t", None, two, False)) == [
        "ALTER TABLE `t` REMOVE PARTITIONING"]
    assert sqls(plan_partitioning("t", two, None, False)) == [
        "ALTER TABLE `t` PARTITION BY HASH (`id`)\nPARTITIONS 2"]


def test_subpartitions_render_counts_or_names() -> None:
    parts = (Partition("p0", "10", subpartitions=("p0sp0", "p0sp1")),
             Partition("p1", "MAXVALUE", subpartitions=("p1sp0", "p1sp1")))
    model = Partitioning("RANGE", "`a`", parts, sub_method="HASH", sub_expression="`b`")
    assert "SUBPARTITION BY HASH (`b`)\nSUBPARTITIONS 2\n(" in model.clause()
    named = replace(model, partitions=(replace(parts[0], subpartitions=("x", "y")), parts[1]))
    assert "(SUBPARTITION `x`, SUBPARTITION `y`)" in named.clause()


def test_shadow_keeps_the_partition_clause() -> None:
    plan = work_definition(MYSQL_RANGE, "_dl_shadow_t")
    assert "/*!50100 PARTITION BY RANGE (`id`)" in plan.create_sql
    assert plan.create_sql.rstrip().endswith("*/")
    assert plan.index_clauses == ["KEY `ix` (`id`)"]


def test_shadow_of_a_table_keyed_by_its_unique_key_keeps_that_key() -> None:
    create = ("CREATE TABLE `k` (\n  `a` int NOT NULL,\n  `b` int,\n  UNIQUE KEY `uk` (`a`),\n"
              "  KEY `ib` (`b`)\n) ENGINE=InnoDB\n/*!50100 PARTITION BY KEY /*!50611 "
              "ALGORITHM = 2 */ ()\nPARTITIONS 3 */")
    plan = work_definition(create, "_dl_shadow_k")
    assert "UNIQUE KEY `uk` (`a`)" in plan.create_sql
    assert plan.index_clauses == ["KEY `ib` (`b`)"]


def test_rebuild_fallback_keeps_the_partitioning_the_table_has_at_that_point() -> None:
    from dumpload.schema.diff import rebuild_statements
    from dumpload.schema.model import Column, Index, IndexPart, Schema, Table

    two = Partitioning("HASH", "`id`", (Partition("p0"), Partition("p1")))
    four = replace(two, partitions=tuple(Partition(f"p{i}") for i in range(4)))
    cols = (Column("id", "int", nullable=False), Column("v", "int"))
    pk = (Index("PRIMARY", "PRIMARY", (IndexPart("id"),)),)
    target = Table("t", cols, pk, partitioning=two)
    source = Table("t", (*cols, Column("w", "int")), pk, partitioning=four)
    create = rebuild_statements(source, Schema("db", tables={"t": target}), "mariadb",
                                set(), [])[1]
    # The ADD PARTITION step runs after the ALTER: the rebuilt table must still have two.
    assert create.endswith("PARTITION BY HASH (`id`)\nPARTITIONS 2")
    assert "`w` int" in create


def test_default_named_partitions_listed_by_the_server_are_supported() -> None:
    create = ("CREATE TABLE `h` (\n  `id` int(11)\n) ENGINE=InnoDB\n PARTITION BY HASH (`id`)\n"
              "(PARTITION `p0` ENGINE = InnoDB,\n PARTITION `p1` ENGINE = InnoDB)")
    model, unsupported = partitioning_from_rows(rows("HASH", "`id`", [("p0", None),
                                                                       ("p1", None)]), create)
    assert unsupported == () and model is not None
    assert model.clause() == "PARTITION BY HASH (`id`)\nPARTITIONS 2"
