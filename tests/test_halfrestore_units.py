"""Half-restored records without a server: classifying a restore's recorded progress, the
standing state, the backup label and how a completed restore ends it."""

from __future__ import annotations

import json
import os
from pathlib import Path

from dumpload.backup import halfrestore
from dumpload.backup.halfrestore import Outcome, classify
from dumpload.backup.inprogress import settle_interrupted

GROUPS = [["parent", "child"], ["big"], ["solo"]]
TARGET = "shop@127.0.0.1_3306"


def progress(swapped: list[str], swapping: list[str]) -> dict:
    doc = halfrestore.progress_doc("run-1", "shop_20261130_120000", "production", "shop",
                                   TARGET, GROUPS)
    doc.update(swapped=swapped, swapping=swapping)
    return doc


def test_nothing_swapped_is_failed_not_partial() -> None:
    out = classify(GROUPS, [], [])
    assert out == Outcome((), (), ("parent", "child", "big", "solo"))
    assert not out.partial


def test_groups_not_known_yet_is_not_partial() -> None:
    assert not classify([], [], []).partial


def test_a_swap_started_alone_is_not_partial() -> None:
    """One group in flight and no other: all old or all new, never mixed."""
    out = classify([["parent", "child"]], [], ["parent", "child"])
    assert out.uncertain == ("parent", "child") and not out.partial


def test_first_group_swapped_then_stopped_is_partial() -> None:
    out = classify(GROUPS, ["parent", "child"], [])
    assert out.restored == ("parent", "child")
    assert out.not_restored == ("big", "solo") and out.uncertain == ()
    assert out.partial


def test_started_group_counts_as_possibly_restored() -> None:
    out = classify(GROUPS, ["parent", "child"], ["big"])
    assert out.uncertain == ("big",) and out.not_restored == ("solo",)
    assert out.partial
    # the first swap in flight, nothing done: old tables next to possibly new ones
    assert classify(GROUPS, [], ["parent", "child"]).partial


def test_every_group_swapped_is_not_partial() -> None:
    out = classify(GROUPS, ["parent", "child", "big", "solo"], [])
    assert out.not_restored == () and not out.partial


def test_partial_restore_stands_and_labels_backups(tmp_path: Path) -> None:
    doc = progress(["parent", "child"], ["big"])
    fields = halfrestore.settle_restore(tmp_path, {"progress": doc, "pre_backup": "pre-1"})
    assert fields == {"partial": {"restored": ["parent", "child"], "uncertain": ["big"],
                                  "not_restored": ["solo"]}}
    [entry] = halfrestore.standing(tmp_path, TARGET)
    assert entry["tables"] == ["big", "child", "parent"]
    assert entry["backup"] == "shop_20261130_120000" and entry["restore"] == "run-1"
    label = halfrestore.label_for(tmp_path, TARGET, ["parent", "other"])
    assert label is not None
    assert label["tables"] == ["parent"] and label["not_restored"] == []
    assert label["restore"] == "run-1" and label["backup"] == "shop_20261130_120000"
    # a backup of a not-restored table is of the mixed database too
    only_old = halfrestore.label_for(tmp_path, TARGET, ["solo"])
    assert only_old is not None and only_old["tables"] == []
    assert only_old["not_restored"] == ["solo"]
    assert halfrestore.label_for(tmp_path, TARGET, ["unrelated"]) is None
    assert halfrestore.label_for(tmp_path, "other@db", ["parent"]) is None


def test_uncertain_tables_resolved_from_the_work_tables_left(tmp_path: Path) -> None:
    """Its work table still there: the started swap did not happen; gone: it did."""
    halfrestore.settle_restore(tmp_path, {"progress": progress(["parent", "child"], ["big"])})
    changed = halfrestore.resolve(tmp_path, TARGET, {"parent", "child", "big", "solo",
                                                     "_dl_shadow_big", "_dl_shadow_solo"})
    assert [e["not_restored"] for e in changed] == [["big", "solo"]]
    [entry] = halfrestore.standing(tmp_path, TARGET)
    assert entry["tables"] == ["child", "parent"] and entry["uncertain"] == []
    assert halfrestore.resolve(tmp_path, TARGET, set()) == []  # nothing uncertain left
    events = [json.loads(x) for x in (tmp_path / "backup_history.log").read_text().splitlines()]
    assert events[-1]["event"] == "half-restored" and events[-1]["status"] == "standing"


def test_uncertain_swap_that_went_through(tmp_path: Path) -> None:
    halfrestore.settle_restore(tmp_path, {"progress": progress(["parent", "child"], ["big"])})
    halfrestore.resolve(tmp_path, TARGET, {"parent", "child", "big", "solo", "_dl_old_big"})
    [entry] = halfrestore.standing(tmp_path, TARGET)
    assert entry["tables"] == ["big", "child", "parent"] and entry["not_restored"] == ["solo"]


def test_uncertain_only_swap_that_did_not_happen_ends_it(tmp_path: Path) -> None:
    """The first group's swap in flight and nothing else done: if it did not happen, the
    database is all old: not half-restored."""
    halfrestore.settle_restore(tmp_path, {"progress": progress([], ["parent", "child"])})
    assert halfrestore.standing(tmp_path, TARGET)[0]["uncertain"] == ["child", "parent"]
    halfrestore.resolve(tmp_path, TARGET, {"_dl_shadow_parent", "_dl_shadow_child"})
    assert halfrestore.standing(tmp_path, TARGET) == []


def test_not_partial_leaves_nothing_standing(tmp_path: Path) -> None:
    assert halfrestore.settle_restore(tmp_path, {"progress": progress([], [])}) == {"swapped": []}
    assert halfrestore.settle_restore(tmp_path, {"event": "create"}) == {}
    assert halfrestore.standing(tmp_path, TARGET) == []


def test_completed_restore_of_the_rest_ends_it(tmp_path: Path) -> None:
    halfrestore.settle_restore(tmp_path, {"progress": progress(["parent", "child"], [])})
    rerun = progress([], [])
    # restoring only part of what was not restored: still mixed
    assert halfrestore.settle_completed(tmp_path, rerun, ["big"]) == []
    assert halfrestore.standing(tmp_path, TARGET)[0]["not_restored"] == ["solo"]
    ended = halfrestore.settle_completed(tmp_path, rerun, ["solo"])
    assert [e["restore"] for e in ended] == ["run-1"]
    assert halfrestore.standing(tmp_path, TARGET) == []
    assert not (tmp_path / halfrestore.FOLDER / f"{TARGET}.json").exists()


def test_completed_restore_of_the_restored_tables_ends_it(tmp_path: Path) -> None:
    """Putting the restored group back (e.g. from the pre-restore backup) also ends it."""
    halfrestore.settle_restore(tmp_path, {"progress": progress(["parent", "child"], [])})
    halfrestore.settle_completed(tmp_path, progress([], []), ["parent", "child"])
    assert halfrestore.standing(tmp_path, TARGET) == []


def test_restoring_a_labelled_backup_brings_the_label_back(tmp_path: Path) -> None:
    label = {"restore": "run-1", "backup": "b1", "tables": ["parent", "child"],
             "uncertain": [], "not_restored": ["big"]}
    rerun = halfrestore.progress_doc("run-2", "pre-1", "production", "shop", TARGET, [])
    halfrestore.settle_completed(tmp_path, rerun, ["parent", "child", "big"], label)
    [entry] = halfrestore.standing(tmp_path, TARGET)
    assert entry["tables"] == ["child", "parent"] and entry["not_restored"] == ["big"]
    assert entry["restored_label_of"] == "pre-1"


def test_settle_interrupted_records_partial_for_a_dead_restore(tmp_path: Path) -> None:
    """A marker of a dead process: failed + partial in the history, standing state kept."""
    folder = tmp_path / "inprogress"
    folder.mkdir()
    dead = os.fork()
    if dead == 0:
        os._exit(0)
    os.waitpid(dead, 0)
    marker = {"event": "restore", "id": "shop_20261130_120000", "env": "production",
              "pid": dead, "pid_started": None, "phase": "swap",
              "progress": progress(["parent", "child"], [])}
    (folder / f"restore_{dead}_0.json").write_text(json.dumps(marker))
    settled = settle_interrupted(tmp_path)
    assert len(settled) == 1
    [line] = [json.loads(x) for x in (tmp_path / "backup_history.log").read_text().splitlines()]
    assert line["status"] == "failed" and "progress" not in line
    assert line["partial"]["restored"] == ["parent", "child"]
    assert line["partial"]["not_restored"] == ["big", "solo"]
    assert halfrestore.standing(tmp_path, TARGET)[0]["restore"] == "run-1"
