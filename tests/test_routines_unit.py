"""Routines and events without a server: catalog rows → model, definer rewrite, the plan."""

from __future__ import annotations

from dataclasses import replace

from dumpload.schema.diff import diff
from dumpload.schema.model import Schema
from dumpload.schema.routines import (
    Event,
    Routine,
    current_user_definer,
    events_from_rows,
    plan_objects,
    routines_from_rows,
)


def test_definer_is_rewritten_whatever_its_quoting() -> None:
    for account in ("`root`@`localhost`", '"app"@"%"', "'we''ird'@'10.0.0.%'", "u@h",
                    "CURRENT_USER", "CURRENT_USER()", "`a b`@`h`"):
        text = f"CREATE DEFINER={account} PROCEDURE `p`() SELECT 'DEFINER=x@y'"
        assert current_user_definer(text) == \
            "CREATE DEFINER=CURRENT_USER PROCEDURE `p`() SELECT 'DEFINER=x@y'"
    assert current_user_definer("CREATE PROCEDURE p() SELECT 1") == \
        "CREATE PROCEDURE p() SELECT 1"


ROUTINE = {"ROUTINE_TYPE": "FUNCTION", "ROUTINE_NAME": "f", "ROUTINE_DEFINITION": "RETURN x",
           "IS_DETERMINISTIC": "YES", "SQL_DATA_ACCESS": "NO SQL", "SECURITY_TYPE": "DEFINER",
           "ROUTINE_COMMENT": "", "SQL_MODE": "STRICT_ALL_TABLES", "DEFINER": "root@localhost",
           "CHARACTER_SET_CLIENT": "utf8", "COLLATION_CONNECTION": "utf8_general_ci"}
PARAMS = [{"ROUTINE_TYPE": "FUNCTION", "SPECIFIC_NAME": "f", "ORDINAL_POSITION": 0,
           "PARAMETER_MODE": None, "PARAMETER_NAME": None, "DTD_IDENTIFIER": "varchar(20)",
           "CHARACTER_SET_NAME": "latin1"},
          {"ROUTINE_TYPE": "FUNCTION", "SPECIFIC_NAME": "f", "ORDINAL_POSITION": 1,
           "PARAMETER_MODE": "IN", "PARAMETER_NAME": "x", "DTD_IDENTIFIER": "int(11)",
           "CHARACTER_SET_NAME": None}]


def test_routine_from_catalog_rows_normalises_types_and_charsets() -> None:
    create = "CREATE DEFINER=`root`@`localhost` FUNCTION `f`(x INT) RETURNS varchar(20) ..."
    routines = routines_from_rows([ROUTINE], PARAMS, {"FUNCTION f": create})
    f = routines["FUNCTION f"]
    assert f.params == (("", "x", "int"),)           # int(11) = int; no mode on functions
    assert f.returns == "varchar(20) CHARSET latin1"
    assert (f.charset_client, f.collation_connection) == ("utf8mb3", "utf8mb3_general_ci")
    assert f.create_sql().startswith("CREATE DEFINER=CURRENT_USER FUNCTION `f`(x INT)")
    assert f.create_sql(keep_definer=True) == create
    # No SHOW CREATE text (no privilege): rendered from the catalog.
    bare = routines_from_rows([ROUTINE], PARAMS, {})["FUNCTION f"]
    assert bare.create_sql() == ("CREATE DEFINER=CURRENT_USER FUNCTION `f`(`x` int) RETURNS "
                                 "varchar(20) CHARSET latin1\n    NO SQL\n    DETERMINISTIC\n"
                                 "    SQL SECURITY DEFINER\nRETURN x")


def test_event_from_catalog_rows() -> None:
    row = {"EVENT_NAME": "e", "EVENT_DEFINITION": "DELETE FROM t", "EVENT_TYPE": "RECURRING",
           "EXECUTE_AT": None, "INTERVAL_VALUE": "1", "INTERVAL_FIELD": "DAY",
           "STARTS": "2031-01-01 00:00:00", "ENDS": None, "STATUS": "DISABLED",
           "ON_COMPLETION": "PRESERVE", "EVENT_COMMENT": "c", "SQL_MODE": "",
           "TIME_ZONE": "SYSTEM", "DEFINER": "root@%"}
    event = events_from_rows([row], {})["EVENT e"]
    assert event.create_sql() == (
        "CREATE DEFINER=CURRENT_USER EVENT `e` ON SCHEDULE EVERY 1 DAY STARTS "
        "'2031-01-01 00:00:00' ON COMPLETION PRESERVE DISABLE COMMENT 'c' DO DELETE FROM t")
    assert dict(event.context())["time_zone"] == "SYSTEM"


def test_plan_objects_creates_replaces_and_drops() -> None:
    p = Routine("PROCEDURE", "p", body="SELECT 1", sql_mode="ANSI_QUOTES",
                create="CREATE DEFINER=`a`@`b` PROCEDURE p() SELECT 1", definer="a@b")
    changed = replace(p, body="SELECT 2", definer="root@localhost")
    gone = Routine("FUNCTION", "g", body="RETURN 1", create="CREATE FUNCTION g() ...")
    diffs, steps = plan_objects({p.key: p}, {p.key: changed, gone.key: gone}, False)
    assert [(s.phase, s.sql) for s in steps] == [
        ("drop_routine", "DROP FUNCTION IF EXISTS `g`"),
        ("drop_routine", "DROP PROCEDURE IF EXISTS `p`"),
        ("create_routine", "CREATE DEFINER=CURRENT_USER PROCEDURE p() SELECT 1")]
    assert [i[2] for s in steps for i in s.items] == [False, True, True]   # a lone drop: unsafe
    assert steps[2].sql_mode == "ANSI_QUOTES"
    assert [d[3] for d in diffs] == ["only in target", "differs"]
    assert "body differ" in diffs[1][4]
    # The definer alone is no difference unless definers are kept.
    same, _ = plan_objects({p.key: p}, {p.key: replace(p, definer="x@y")}, False)
    assert same == []
    kept, _ = plan_objects({p.key: p}, {p.key: replace(p, definer="x@y")}, True)
    assert kept and "definer differ" in kept[0][4]


def test_diff_orders_functions_before_views_and_events_last() -> None:
    f = Routine("FUNCTION", "f", body="RETURN 1", create="CREATE FUNCTION f() RETURNS INT RETURN 1")
    e = Event("e", body="SELECT 1", create="CREATE EVENT e ON SCHEDULE EVERY 1 DAY DO SELECT 1")
    from dumpload.schema.model import View
    v = View("v", "select `f`() AS `x`")
    source = Schema("db", views={"v": v}, routines={f.key: f}, events={e.key: e})
    plan = diff(source, Schema("db"))
    assert [s.phase for s in plan.steps] == ["create_routine", "create_view", "create_event"]
    assert Schema("db", routines={f.key: f}).object_counts()["functions"] == 1
