"""Pure parts of the data copy: chunk bounds, ordering, FK groups, shadow DDL, encodings."""

from __future__ import annotations

from dataclasses import replace

import pytest

from dumpload.backup.worktables import work_definition
from dumpload.catalog import fk_groups
from dumpload.data.chunks import Chunk, integer_bounds, ranges_from_bounds
from dumpload.data.delta import range_count, worth_it
from dumpload.data.encode import (
    CLIENT,
    census_sql,
    checksum_sql,
    client_parts,
    load_spec,
    load_sql,
    prints_null_word,
    select_expr,
)
from dumpload.data.engine import striped
from dumpload.data.inplace import batches
from dumpload.data.plan import Choice, Facts, choose_strategies, no_delta_reason, not_delta
from dumpload.data.shadow import deferred_index, shadow_plan
from dumpload.data.stream import _find_marker, _hold_back
from dumpload.data.tables import Column, ForeignKey, TableInfo, work_name
from dumpload.data.verify import combine
from dumpload.errors import DataError
from dumpload.schema.model import Check, Index, IndexPart, Table
from dumpload.schema.model import Column as ModelColumn
from dumpload.schema.model import ForeignKey as ModelFK
from dumpload.schema.partitions import Partition, Partitioning


def col(name: str, dtype: str, nullable: bool = True, charset: str | None = None) -> Column:
    return Column(name, dtype, dtype, charset, None, nullable, False, False)


def test_integer_bounds_cover_the_range_evenly() -> None:
    assert integer_bounds(1, 100, 4) == ["26", "51", "76"]
    assert integer_bounds(5, 5, 4) == []
    assert integer_bounds(-10, 10, 2) == ["1"]
    assert integer_bounds(1, 3, 10) == ["2", "3"]


def test_ranges_are_open_at_both_ends() -> None:
    chunks = ranges_from_bounds("t", "id", ["10", "20"])
    assert [c.where for c in chunks] == ["`id` < 10", "`id` >= 10 AND `id` < 20", "`id` >= 20"]
    assert ranges_from_bounds("t", "id", []) == [Chunk("t", 0, None, None, None)]
    assert Chunk("t", 0, None, None, None).where == ""


def test_striped_order_keeps_concurrent_chunks_apart() -> None:
    items = ranges_from_bounds("t", "id", [str(i) for i in range(1, 6)])  # 6 chunks
    order = [c.index for c in striped(items, 2)]
    assert order == [0, 3, 1, 4, 2, 5]
    assert [c.index for c in striped(items, 1)] == list(range(6))


def test_fk_groups_join_linked_tables() -> None:
    groups = fk_groups(["a", "b", "c", "d"], [("b", "a"), ("c", "x"), ("d", "d")])
    assert groups == [["a", "b"], ["c"], ["d"]]


def test_work_names_fit_64_characters() -> None:
    assert work_name("_dl_shadow_", "orders") == "_dl_shadow_orders"
    long = work_name("_dl_shadow_", "x" * 64)
    assert len(long) == 64 and long.startswith("_dl_shadow_x")
    assert work_name("_dl_shadow_", "x" * 64) != work_name("_dl_shadow_", "x" * 63 + "y")


CREATE = """CREATE TABLE `child` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `pid` int(11) DEFAULT NULL,
  `name` varchar(20) DEFAULT NULL,
  `doc` text DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `ux_name` (`name`),
  KEY `fk_p` (`pid`),
  FULLTEXT KEY `ft_doc` (`doc`),
  CONSTRAINT `fk_p` FOREIGN KEY (`pid`) REFERENCES `parent` (`id`) ON DELETE CASCADE,
  CONSTRAINT `chk` CHECK (`pid` > 0)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"""


def test_the_dump_text_split_defers_btree_indexes_and_fks() -> None:
    plan = work_definition(CREATE, "_dl_shadow_child")
    assert plan.index_clauses == ["UNIQUE KEY `ux_name` (`name`)", "KEY `fk_p` (`pid`)"]
    assert plan.fk_clauses == [
        "CONSTRAINT `fk_p` FOREIGN KEY (`pid`) REFERENCES `parent` (`id`) ON DELETE CASCADE"]
    assert plan.create_sql.startswith("CREATE TABLE `_dl_shadow_child` (")
    assert "FULLTEXT KEY `ft_doc` (`doc`)," in plan.create_sql
    assert "CONSTRAINT `chk` CHECK (`pid` > 0)\n) ENGINE=InnoDB" in plan.create_sql


def test_the_dump_text_split_keeps_the_index_of_an_auto_increment_column() -> None:
    create = """CREATE TABLE `t` (
  `a` int(11) NOT NULL,
  `n` int(11) NOT NULL AUTO_INCREMENT,
  PRIMARY KEY (`a`),
  KEY `ix_n` (`n`)
) ENGINE=InnoDB"""
    plan = work_definition(create, "_dl_shadow_t")
    assert plan.index_clauses == []
    assert "KEY `ix_n` (`n`)\n)" in plan.create_sql


def test_which_indexes_wait_for_the_load() -> None:
    assert deferred_index("INDEX", "a", None, False)
    assert deferred_index("UNIQUE", "a", "id", False)
    assert not any(deferred_index(kind, "a", None, False)
                   for kind in ("PRIMARY", "FULLTEXT", "SPATIAL"))
    assert not deferred_index("INDEX", "id", "id", False)      # the AUTO_INCREMENT column's
    assert not deferred_index("UNIQUE", "a", None, True)       # PARTITION BY KEY () uses it
    assert deferred_index("INDEX", "a", None, True)


def _child() -> Table:
    return Table(
        "child", (ModelColumn("id", "int", nullable=False, auto_increment=True),
                  ModelColumn("pid", "int"), ModelColumn("name", "varchar(20)"),
                  ModelColumn("doc", "text")),
        (Index("PRIMARY", "PRIMARY", (IndexPart("id"),)),
         Index("ft_doc", "FULLTEXT", (IndexPart("doc"),)),
         Index("fk_p", "INDEX", (IndexPart("pid"),)),
         Index("ux_name", "UNIQUE", (IndexPart("name"),))),
        (ModelFK("fk_p", ("pid",), "parent", ("id",), on_delete="CASCADE"),),
        (Check("chk", "`pid` > 0"),), charset="utf8mb4", collation="utf8mb4_general_ci")


def test_the_shadow_is_the_model_without_deferred_indexes_and_fks() -> None:
    plan = shadow_plan(_child(), "mariadb")
    assert (plan.table, plan.shadow) == ("child", "_dl_shadow_child")
    assert plan.index_clauses == ["KEY `fk_p` (`pid`)", "UNIQUE KEY `ux_name` (`name`)"]
    assert plan.fk_clauses == [
        "CONSTRAINT `fk_p` FOREIGN KEY (`pid`) REFERENCES `parent` (`id`) ON DELETE CASCADE"]
    assert plan.create_sql == (
        "CREATE TABLE `_dl_shadow_child` (\n  `id` int NOT NULL AUTO_INCREMENT,\n"
        "  `pid` int NULL,\n  `name` varchar(20) NULL,\n  `doc` text NULL,\n"
        "  PRIMARY KEY (`id`),\n  FULLTEXT KEY `ft_doc` (`doc`),\n"
        "  CONSTRAINT `chk` CHECK (`pid` > 0)\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 "
        "COLLATE=utf8mb4_general_ci")
    assert shadow_plan(_child(), "mariadb", name="w").create_sql.startswith("CREATE TABLE `w`")


def test_the_shadow_keeps_the_auto_increment_key_and_the_partition_key() -> None:
    auto = replace(_child(), indexes=(Index("ix_id", "UNIQUE", (IndexPart("id"),)),))
    assert shadow_plan(auto, "mariadb").index_clauses == []
    by_key = Table("k", (ModelColumn("a", "int", nullable=False), ModelColumn("b", "int")),
                   (Index("ib", "INDEX", (IndexPart("b"),)),
                    Index("ua", "UNIQUE", (IndexPart("a"),))),
                   partitioning=Partitioning("KEY", "", (Partition("p0"), Partition("p1"))))
    plan = shadow_plan(by_key, "mariadb")
    assert plan.index_clauses == ["KEY `ib` (`b`)"]
    assert "UNIQUE KEY `ua` (`a`)\n)" in plan.create_sql
    assert plan.create_sql.endswith("\nPARTITION BY KEY ()\nPARTITIONS 2")
    by_column = replace(by_key, partitioning=replace(by_key.partitioning, expression="`a`"))
    assert shadow_plan(by_column, "mariadb").index_clauses == [
        "KEY `ib` (`b`)", "UNIQUE KEY `ua` (`a`)"]


def test_a_table_the_model_cannot_render_gets_the_server_clause_or_no_shadow() -> None:
    odd = replace(_child(), unsupported=("not supported: PARTITION BY SYSTEM_TIME",))
    with pytest.raises(DataError, match="SYSTEM_TIME"):
        shadow_plan(odd, "mariadb")
    shown = replace(odd, partition_text="PARTITION BY SYSTEM_TIME INTERVAL 1 MONTH")
    assert shadow_plan(shown, "mariadb").create_sql.endswith(
        "COLLATE=utf8mb4_general_ci\nPARTITION BY SYSTEM_TIME INTERVAL 1 MONTH")


def test_select_expressions() -> None:
    assert select_expr(col("n", "int", nullable=False)) == "`n`"
    assert select_expr(col("n", "int")) == "IFNULL(`n`, '\\\\N')"
    assert "REGEXP_REPLACE(REGEXP_REPLACE(REGEXP_REPLACE(`s`" in select_expr(col("s", "varchar"))
    assert select_expr(col("f", "float", False)) == "CAST(`f` AS DOUBLE)"
    assert select_expr(col("b", "bit", False)) == "`b` + 0"
    assert select_expr(col("u", "varchar", False, "ucs2")) == "HEX(`u`)"
    assert select_expr(col("g", "geometry", False)) == "HEX(`g`)"


def test_client_format_leaves_escaping_to_the_client() -> None:
    assert select_expr(col("s", "varchar"), fmt=CLIENT) == "`s`"
    assert select_expr(col("n", "int"), fmt=CLIENT) == "`n`"
    assert select_expr(col("f", "float"), fmt=CLIENT) == "CAST(`f` AS DOUBLE)"
    assert select_expr(col("u", "varchar", True, "ucs2"), fmt=CLIENT) == "HEX(`u`)"
    assert select_expr(col("s", "varchar"), fmt=CLIENT, prefixed=True) == "CONCAT(_binary'~', `s`)"
    # The bare word NULL is an SQL NULL only with ENCLOSED BY set (to a byte never sent).
    sql = load_sql("t", load_spec([col("a", "int")], fmt=CLIENT))
    assert "OPTIONALLY ENCLOSED BY '\\0' ESCAPED BY" in sql
    assert "ENCLOSED" not in load_sql("t", load_spec([col("a", "int")]))


def test_which_columns_may_print_the_word_null() -> None:
    def typed(dtype: str, ctype: str) -> Column:
        return Column("c", dtype, ctype, "utf8mb4", None, True, False, False)
    assert prints_null_word(typed("varchar", "varchar(4)"))
    assert prints_null_word(typed("text", "text"))
    assert prints_null_word(typed("enum", "enum('NULL','x')"))
    assert not prints_null_word(typed("char", "char(3)"))
    assert not prints_null_word(typed("enum", "enum('a','b')"))
    assert not prints_null_word(typed("int", "int(11)"))
    assert not prints_null_word(col("s", "varchar"), "mysql")  # sent as hex


def test_rows_holding_the_word_null_go_apart_prefixed() -> None:
    cols = [col("id", "int", False), col("s", "varchar"), col("b", "bit")]
    assert len(client_parts("t", cols, "`id` < 9")) == 1
    plain, odd = client_parts("t", cols, "`id` < 9", null_words=True)
    assert plain.select.endswith("WHERE (`id` < 9) AND NOT ((LENGTH(`s`) <=> 4 AND "
                                 "`s` <=> _binary'NULL'))")
    assert "CONCAT(_binary'~', `s`)" in odd.select and odd.select.endswith("'NULL'))")
    assert odd.spec.sets == "SET `s` = SUBSTRING(@dl_v1, 2), `b` = CAST(@dl_v2 AS UNSIGNED)"
    assert plain.spec.targets == "(`id`, `s`, @dl_v2)"
    census = census_sql("t", cols, "`id` < 9", "crc")
    assert census is not None and "CRC32C(@dl_row)" in census and "SUM((LENGTH(`s`)" in census
    assert census_sql("t", [col("id", "int")], "", "") is None  # nothing to ask


def test_load_spec_uses_variables_only_where_needed() -> None:
    spec = load_spec([col("a", "int"), col("b", "bit"), col("g", "point")])
    assert spec.targets == "(`a`, @dl_v1, @dl_v2)"
    assert spec.sets == "SET `b` = CAST(@dl_v1 AS UNSIGNED), `g` = UNHEX(@dl_v2)"
    assert load_spec([col("a", "int")]).sets == ""


def test_checksum_marks_null_apart_and_sums() -> None:
    sql = checksum_sql("t", [col("a", "varchar"), col("b", "blob")], "`id` < 5")
    assert "IFNULL(CONCAT(LENGTH(`a`), ':', `a`), '-')" in sql and "'-')" in sql
    assert "SUM(CAST(CONV(SUBSTRING(" in sql and "BIT_XOR" not in sql
    assert sql.endswith("WHERE `id` < 5")


def test_combine_is_order_independent() -> None:
    assert combine([(1, 2), (4, 5)]) == combine([(4, 5), (1, 2)])
    assert combine([(1, 2)]) != combine([(1, 2), (1, 2)])


def test_marker_found_only_on_its_own_line() -> None:
    marker = b"__end__\n"
    assert _find_marker(b"__end__\n", marker) == 0
    assert _find_marker(b"a\tb\n__end__\n", marker) == 4
    assert _find_marker(b"x__end__\n", marker) == -1
    assert _find_marker(b"a\n__en", marker) == -1


def test_only_a_possible_marker_start_is_held_back() -> None:
    marker = b"__end__\n"
    assert _hold_back(b"a\tb\nc", marker) == (b"a\tb\nc", b"")
    assert _hold_back(b"a\tb\n__en", marker) == (b"a\tb\n", b"__en")
    assert _hold_back(b"a\n", marker) == (b"a\n", b"")
    assert _hold_back(b"__e", marker) == (b"", b"__e")


def test_checksum_kinds() -> None:
    from dumpload.data.encode import checksum_kind
    assert checksum_kind("mariadb", (10, 11, 6)) == "crc"
    assert checksum_kind("mariadb", (10, 6, 1)) == "md5"
    assert checksum_kind("mysql", (8, 4, 0)) == "md5"
    sql = checksum_sql("t", [col("a", "int")], kind="crc")
    assert "CRC32(@dl_row := CONCAT(" in sql and "CRC32C(@dl_row)" in sql


def test_mysql_sources_send_strings_as_hex() -> None:
    # MySQL's regexp functions refuse binary strings.
    assert select_expr(col("s", "varchar", False), "mysql") == "HEX(`s`)"
    assert load_spec([col("s", "blob")], "mysql").sets == "SET `s` = UNHEX(@dl_v0)"
    assert select_expr(col("n", "int", False), "mysql") == "`n`"


def test_log_progress_reports_rows_and_bytes(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from dumpload.progress import LogProgress, TerminalProgress
    progress = LogProgress(interval=0)
    progress.add_table("t", 100, 1000)
    with caplog.at_level(logging.INFO, logger="dumpload.progress"):
        progress.advance("t", 50, 500)
        progress.table_done("t")
    text = caplog.text
    assert "t: 50/100 rows" in text and "t done: 50 rows" in text
    bars = TerminalProgress()
    bars.add_table("t", 10, 100)
    bars.advance("t", 5, 50)
    bars.table_done("t")
    bars.close()


def _info(name: str, size: int, engine: str = "InnoDB", key: tuple[str, ...] = ("id",),
          rows: int = 10) -> TableInfo:
    return TableInfo(name, [col("id", "int", False)], key, ("int",) * len(key), engine, rows,
                     size)


def _fk(child: str, parent: str, schema: str = "db") -> ForeignKey:
    return ForeignKey(f"fk_{child}", child, ("id",), schema, parent, ("id",))


def test_strategies_per_fk_group_size_trigger_and_engine() -> None:
    mb = 1024 * 1024
    names = ["a", "b", "c", "d", "e", "f"]
    src = {n: _info(n, mb) for n in names}
    dst = {n: _info(n, mb) for n in names}
    src["c"] = _info("c", 64 * mb)             # big: its whole group (c, d) goes shadow
    dst["e"] = _info("e", 64 * mb)             # big on the target only: DELETE would be long
    dst["f"] = _info("f", mb, engine="MyISAM")  # cannot roll back
    facts = Facts(src, dst, {"b": 1}, [_fk("d", "c")], 16 * mb)
    got = choose_strategies(facts, names, "db")
    assert {t: c.mode for t, c in got.items()} == {
        "a": "in-place", "b": "shadow", "c": "shadow", "d": "shadow", "e": "delta",
        "f": "shadow"}
    assert got["a"].reason == "small" and got["b"].reason == "trigger"
    assert got["c"].reason == "large (64.0 MiB > 16.0 MiB); no delta: FK"
    assert got["d"].reason == "FK group with c: large (64.0 MiB > 16.0 MiB); no delta: FK"
    assert got["e"].reason == "large (64.0 MiB > 16.0 MiB): delta by key ranges"
    assert got["f"].reason == "MyISAM engine"
    # An FK to another schema does not group tables, but rules out the delta.
    other = choose_strategies(Facts(src, dst, {}, [_fk("e", "x", "elsewhere")], 16 * mb),
                              ["e"], "db")
    assert other["e"] == Choice("shadow", "large (64.0 MiB > 16.0 MiB); no delta: FK")
    off = choose_strategies(Facts(src, dst, {}, [], 0, in_place_off="compressed target link"),
                            names, "db")
    assert off["a"].mode == "delta"    # in place off: even a small table is compared
    assert off["a"].reason == "in-place off: compressed target link: delta by key ranges"
    assert off["f"] == Choice("shadow", "in-place off: compressed target link; "
                              "no delta: MyISAM engine")
    counted = choose_strategies(Facts(src, dst, {}, [], 16 * mb, {"a"}), ["a"], "db")
    assert counted["a"].mode == "delta" and counted["a"].reason.startswith(
        "large (over 50,000 rows):")
    small_group = choose_strategies(Facts(src, dst, {}, [_fk("b", "a")], 16 * mb),
                                    ["a", "b"], "db")
    assert small_group["a"] == small_group["b"] == Choice("in-place",
                                                          "small, with its FK group (2 tables)")


def test_full_and_lock_target_rule_out_the_delta() -> None:
    big = {"t": _info("t", 1 << 30)}
    facts = Facts(big, dict(big), {}, [], 16 << 20)
    assert choose_strategies(facts, ["t"], "db")["t"].mode == "delta"
    for flags, why in (({"full": True, "lock_target": False}, "--full"),
                       ({"full": False, "lock_target": True}, "--lock-target"),
                       ({"full": True, "lock_target": True}, "--full")):
        choice = choose_strategies(facts, ["t"], "db", no_delta_reason(**flags))["t"]
        assert choice == Choice("shadow", f"large (1.0 GiB > 16.0 MiB); no delta: {why}")
    assert no_delta_reason(full=False, lock_target=False) == ""


def test_delta_candidates() -> None:
    big = _info("t", 1 << 30)
    assert not_delta(big, big, set(), {}) == ""
    assert not_delta(big, big, {"t"}, {}) == "FK"                    # an FK in or out
    assert not_delta(big, big, set(), {"t": 1}) == "trigger"
    assert not_delta(big, _info("t", 1 << 30, rows=0), set(), {}) == "empty target"
    assert not_delta(_info("t", 1 << 30, key=()), big, set(), {}) == "no key to cut ranges on"
    assert not_delta(big, _info("t", 1 << 30, engine="Aria"), set(), {}) == "Aria engine"


def test_in_place_batches_keep_groups_whole() -> None:
    sizes = {f"t{i}": 10 << 20 for i in range(5)}
    got = batches([["t0"], ["t1", "t2"], ["t3"], ["t4"]], sizes)
    assert got == [["t0", "t1", "t2"], ["t3", "t4"]]           # 32 MB per transaction
    assert batches([["t0"], ["t1", "t2", "t3", "t4"]], sizes) == [["t0"], ["t1", "t2", "t3", "t4"]]
    many = batches([[f"s{i}"] for i in range(600)], {})
    assert [len(b) for b in many] == [250, 250, 100]


def test_delta_worth_it_and_range_count() -> None:
    assert worth_it([((10, 1), (10, 2))], 1000, 1000)
    assert not worth_it([((300, 1), (10, 2))], 1000, 1000)
    assert worth_it([], 0, 0)
    assert range_count(0, 0) == 1
    assert range_count(400 << 20, 2_000_000) == 400
    assert range_count(1 << 40, 10) == 1024


def test_the_shadow_lists_indexes_and_checks_in_the_server_order() -> None:
    from dumpload.schema.flavor import shown_order
    order = shown_order(CREATE)
    assert order == (("PRIMARY", "ux_name", "fk_p", "ft_doc"), ("chk",))
    table = replace(_child(), checks=(Check("a", "1"), Check("chk", "`pid` > 0")),
                    index_order=order[0], check_order=("chk", "a"))
    assert replace(table, index_order=(), check_order=()) == table   # the order is not compared
    plan = shadow_plan(table, "mariadb")
    assert plan.index_clauses == ["UNIQUE KEY `ux_name` (`name`)", "KEY `fk_p` (`pid`)"]
    assert "CONSTRAINT `chk` CHECK (`pid` > 0),\n  CONSTRAINT `a` CHECK (1)\n)" in plan.create_sql
