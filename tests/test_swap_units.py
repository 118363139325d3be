"""The swap protocol's plans, from literal catalogs (no server)."""

from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
import time
from datetime import datetime

from dumpload.schema.model import ForeignKey, Trigger
from dumpload.swap import (
    Fingerprint,
    Replacement,
    _Catalog,
    changed_since,
    fence_name,
    plan_settle,
    plan_swap,
    work_name,
)

FK_C_P = ForeignKey("fk_c_p", ("p_id",), "p", ("id",), on_delete="CASCADE")
FK_O_P = ForeignKey("fk_o_p", ("p_id",), "p", ("id",))
TRG = Trigger("trg_c", "c", "BEFORE", "INSERT", "SET NEW.n = 1", 1, "app@%", "STRICT_ALL_TABLES")


def catalog(**extra: object) -> _Catalog:
    tables = {"p", "c", "o", work_name("p"), work_name("c")}
    fks = {"c": [FK_C_P], "o": [FK_O_P]}
    triggers = {"c": [TRG]}
    cat = _Catalog("db", tables, fks, triggers)
    for key, value in extra.items():
        setattr(cat, key, value)
    return cat


def test_swap_moves_triggers_and_fks_onto_the_work_tables_under_one_lock() -> None:
    script = plan_swap(catalog(), [Replacement("p", work_name("p")),
                                   Replacement("c", work_name("c"))])
    assert "`o` WRITE" in script.lock and "`_dl_shadow_c` WRITE" in script.lock
    move = "\n".join(script.move)
    assert "DROP TRIGGER `trg_c`" in move
    assert "CREATE DEFINER=CURRENT_USER TRIGGER `trg_c` BEFORE INSERT ON `_dl_shadow_c`" in move
    assert "SET SESSION sql_mode = 'STRICT_ALL_TABLES'" in move
    # c's FK now points at p's work table: the rename carries it to the new p
    assert ("ALTER TABLE `_dl_shadow_c` ADD CONSTRAINT `fk_c_p` FOREIGN KEY (`p_id`) "
            "REFERENCES `_dl_shadow_p` (`id`) ON DELETE CASCADE") in move
    # o is outside the group: its FK is re-pointed at p's work table
    assert "ALTER TABLE `o` DROP FOREIGN KEY `fk_o_p`" in move
    assert "ALTER TABLE `o` ADD CONSTRAINT `fk_o_p` FOREIGN KEY (`p_id`) REFERENCES " \
           "`_dl_shadow_p`" in move
    assert move.index("DROP TRIGGER `trg_c`") < move.index("CREATE DEFINER")
    assert script.rename == ("RENAME TABLE `p` TO `_dl_old_p`, `_dl_shadow_p` TO `p`, "
                             "`c` TO `_dl_old_c`, `_dl_shadow_c` TO `c`")
    assert [f.split("`")[1] for f in script.fence] == [
        fence_name(t, e) for t in ("c", "p") for e in ("INSERT", "UPDATE", "DELETE")]
    assert script.drop == ["DROP TABLE IF EXISTS `_dl_old_c`", "DROP TABLE IF EXISTS `_dl_old_p`"]
    assert {t for t, _ in script.record["fks"]} == {"c", "o"}


def test_swap_with_given_definitions_replaces_the_live_ones() -> None:
    new_trg = Trigger("trg_new", "c", "AFTER", "UPDATE", "SET @x = 1")
    script = plan_swap(catalog(), [Replacement("c", work_name("c"), foreign_keys=(),
                                               triggers=(new_trg,))])
    move = "\n".join(script.move)
    assert "DROP TRIGGER `trg_c`" in move and "TRIGGER `trg_new` AFTER UPDATE" in move
    assert "ADD CONSTRAINT `fk_c_p`" not in move
    assert "`p` READ" not in script.lock  # no FK to p any more: p is not locked


def test_swap_of_a_table_that_does_not_exist_yet_is_a_plain_rename() -> None:
    cat = catalog()
    cat.tables.add(work_name("new"))
    script = plan_swap(cat, [Replacement("new", work_name("new"))])
    assert script.rename == "RENAME TABLE `_dl_shadow_new` TO `new`"
    assert script.fence == [] and script.drop == []


def test_settle_moves_what_a_work_table_carries_back_to_its_live_table() -> None:
    # killed during step 3: the trigger and c's FK already sit on c's shadow
    cat = catalog(fks={"_dl_shadow_c": [FK_C_P], "o": [FK_O_P]},
                  triggers={"_dl_shadow_c": [Trigger(**{**TRG.__dict__, "table": "_dl_shadow_c"})]})
    script = plan_settle(cat)
    move = "\n".join(script.move)
    assert "CREATE DEFINER=CURRENT_USER TRIGGER `trg_c` BEFORE INSERT ON `c`" in move
    assert "ALTER TABLE `c` ADD CONSTRAINT `fk_c_p`" in move
    assert "DROP TABLE IF EXISTS `_dl_shadow_c`" in script.drop
    assert "DROP TABLE IF EXISTS `_dl_shadow_p`" in script.drop


def test_settle_after_the_rename_keeps_the_new_table_and_drops_the_old() -> None:
    cat = _Catalog("db", {"p", "c", "_dl_old_c"}, {"c": [FK_C_P]}, {"c": [TRG]})
    script = plan_settle(cat)
    assert script.move == []
    assert script.drop == ["DROP TABLE IF EXISTS `_dl_old_c`"]


def test_settle_recreates_what_the_record_says_was_lost_between_drop_and_create() -> None:
    cat = _Catalog("db", {"p", "c", "_dl_shadow_c"}, {}, {})
    record = {"triggers": [["c", {"name": "trg_c", "table": "c", "timing": "BEFORE",
                                  "event": "INSERT", "statement": "SET NEW.n = 1", "order": 1,
                                  "sql_mode": ""}]],
              "fks": [["c", {"name": "fk_c_p", "columns": ["p_id"], "ref_table": "p",
                             "ref_columns": ["id"], "ref_schema": None,
                             "on_delete": "RESTRICT", "on_update": "RESTRICT"}]]}
    move = "\n".join(plan_settle(cat, record).move)
    assert "TRIGGER `trg_c` BEFORE INSERT ON `c`" in move
    assert "ALTER TABLE `c` ADD CONSTRAINT `fk_c_p`" in move


def test_settle_drops_fences_and_never_moves_them() -> None:
    fence = Trigger(fence_name("c", "INSERT"), "c", "BEFORE", "INSERT", "SIGNAL SQLSTATE '45000'")
    cat = _Catalog("db", {"c", "_dl_shadow_c"}, {}, {"c": [fence]})
    script = plan_settle(cat)
    assert script.move == [f"DROP TRIGGER `{fence.name}`"]


def test_nothing_to_settle() -> None:
    assert plan_settle(_Catalog("db", {"p", "c"}, {}, {})).empty


def test_changed_since_is_exact_to_the_second_and_conservative() -> None:
    fp = Fingerprint("t", "2026-11-30 10:00:00", "2026-11-30 10:00:05")
    assert not changed_since(fp, datetime(2026, 11, 30, 10, 0, 0))
    assert changed_since(fp, datetime(2026, 11, 30, 10, 0, 6))
    assert changed_since(fp, None)  # server restarted: cannot tell, so refuse
    fresh = Fingerprint("t", None, "2026-11-30 10:00:05")
    assert not changed_since(fresh, None)
    assert changed_since(fresh, datetime(2026, 11, 30, 10, 0, 5))


def test_foreign_definers_are_found_in_any_quoting() -> None:
    from dumpload.definers import foreign_definers

    statements = [
        "CREATE OR REPLACE ALGORITHM=UNDEFINED DEFINER='root'@'localhost' SQL SECURITY "
        "DEFINER VIEW `v one` AS SELECT 1",
        "CREATE DEFINER=`app`@`%` TRIGGER `t` BEFORE INSERT ON `x` FOR EACH ROW SET @a = 1",
        "CREATE DEFINER=CURRENT_USER TRIGGER `mine` BEFORE INSERT ON `x` FOR EACH ROW SET @a = 1",
        "ALTER TABLE `x` ADD COLUMN `definer` INT",
    ]
    assert foreign_definers(statements) == [("view v one", "root@localhost"),
                                            ("trigger t", "app@%")]


def test_executor_exits_at_once_while_watching_its_parent() -> None:
    """The executor's parent-watching thread sits in a read of stdin; the process must
    still end at once and cleanly (a buffered read made every swap wait a second and die
    of SIGABRT at exit)."""
    code = ("import threading, dumpload.swap_exec as x; "
            "threading.Thread(target=x._watch_parent, args=(threading.Event(),), "
            "daemon=True).start()")
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    started = time.monotonic()
    try:
        proc.wait(timeout=30)
        took = time.monotonic() - started
    finally:
        assert proc.stdin is not None and proc.stderr is not None
        err = proc.stderr.read()
        proc.stdin.close()
    assert proc.returncode == 0, err
    assert b"Fatal Python error" not in err
    assert took < 0.9, f"exit took {took:.2f} s"


def test_executor_reads_its_job_across_short_reads() -> None:
    """The job arrives as a length and a pickle, possibly in several pipe reads."""
    code = ("import json, dumpload.swap_exec as x; "
            "print(json.dumps(x.read_job()))")
    blob = pickle.dumps({"what": "swap of t", "ignore": [1, 2]})
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    payload = struct.pack(">I", len(blob)) + blob
    for i in range(0, len(payload), 7):
        proc.stdin.write(payload[i:i + 7])
        proc.stdin.flush()
    proc.stdin.close()
    assert json.loads(proc.stdout.read()) == {"what": "swap of t", "ignore": [1, 2]}
    assert proc.wait(timeout=30) == 0
