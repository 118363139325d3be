"""Privilege logic without a server: SHOW GRANTS parsing, patterns, what is missing."""

from __future__ import annotations

from dumpload.privileges import (
    Requirement,
    grant_statements,
    grants_from_lines,
    missing,
    parse_grant,
    required,
    schema_matches,
)


def test_parse_grant_lines() -> None:
    assert parse_grant("GRANT USAGE ON *.* TO `u`@`%`") == (set(), "*", "*")
    privs, schema, table = parse_grant(
        "GRANT SELECT, INSERT, LOCK TABLES, SHOW VIEW ON `sh``op`.* TO `u`@`%`")
    assert privs == {"SELECT", "INSERT", "LOCK TABLES", "SHOW VIEW"} and schema == "sh`op"
    assert table == "*"
    privs, _, _ = parse_grant("GRANT ALL PRIVILEGES ON *.* TO `root`@`%` WITH GRANT OPTION")
    assert {"LOCK TABLES", "TRIGGER", "CREATE VIEW", "EVENT"} <= privs
    privs, schema, table = parse_grant("GRANT SELECT (`a`, `b`), INSERT ON `s`.`t` TO `u`@`%`")
    assert privs == {"INSERT"} and (schema, table) == ("s", "t")
    assert parse_grant("GRANT `r1` TO `u`@`%`") is None
    assert parse_grant("SET DEFAULT ROLE `r1` FOR `u`@`%`") is None
    assert parse_grant("GRANT SELECT ON `mysql`.`proc` TO `u`@`%`")[1:] == ("mysql", "proc")


def test_schema_patterns() -> None:
    assert schema_matches("shop", "shop") and not schema_matches("shop", "shop2")
    assert schema_matches("sh\\_%", "sh_anything") and not schema_matches("sh\\_%", "shxa")
    assert schema_matches("sh_p", "shop") and schema_matches("%", "x")


def test_missing_counts_global_database_roles_but_not_tables() -> None:
    lines = ["GRANT `r1` TO `u`@`%`",  # the role's own grants follow in SHOW GRANTS
             "GRANT SELECT ON *.* TO `u`@`%`",
             "GRANT CREATE, DROP ON `sh\\_%`.* TO `r1`",
             "GRANT ALTER ON `shop`.`t` TO `u`@`%`",
             "GRANT SELECT ON `mysql`.`proc` TO `u`@`%`"]
    have = grants_from_lines(lines)
    need = [Requirement("SELECT"), Requirement("CREATE"), Requirement("DROP"),
            Requirement("ALTER", commands=("structure",)),
            Requirement("SELECT", "mysql.proc")]
    assert missing(need, have, "sh_x") == [Requirement("ALTER")]
    assert [str(r) for r in missing(need, have, "other")] == ["CREATE", "DROP", "ALTER"]


def test_required_lists_commands_per_privilege() -> None:
    target = {str(r): r.commands for r in required("target", "mariadb")}
    assert "LOCK TABLES" in target and "rollback" in target["LOCK TABLES"]
    assert "backup restore" in target["LOCK TABLES"] and "FILE" not in target
    assert "backup create" in target["SHOW VIEW"]
    assert target["SELECT ON mysql.proc"] == ("backup create (whole database)",)
    source = {str(r) for r in required("source", "mariadb")}
    assert "LOCK TABLES" in source and "CREATE" not in source
    assert "SHOW_ROUTINE ON *.*" in {str(r) for r in required("source", "mysql")}


def test_grant_statements_fix_what_is_missing() -> None:
    text = grant_statements([Requirement("LOCK TABLES"), Requirement("SHOW VIEW"),
                             Requirement("SELECT", "mysql.proc")], "shop", "app@%")
    assert text == ("GRANT LOCK TABLES, SHOW VIEW ON `shop`.* TO 'app'@'%'; "
                    "GRANT SELECT ON mysql.proc TO 'app'@'%';")
    # quotes in the account and backticks in the database are escaped, not pasted raw
    odd = grant_statements([Requirement("SELECT")], "sh`op", "o'brien@10.0.%")
    assert odd == "GRANT SELECT ON `sh``op`.* TO 'o\\'brien'@'10.0.%';"
