"""Backup logic without a server: retention arithmetic, section splitting, frame writing."""

from __future__ import annotations

import io
from datetime import datetime, timedelta

import pytest
import zstandard

from dumpload.backup.files import backup_id, clean_label, parse_stamp
from dumpload.backup.frames import DataSplitter, FrameWriter, SectionSplitter, classify
from dumpload.backup.retention import RetentionItem, RetentionPolicy, plan_retention

NOW = datetime(2024, 6, 30, 12, 0, 0)


def item(name: str, days: float, good: bool = True, kind: str = "full",
         run: str | None = None) -> RetentionItem:
    return RetentionItem(name, NOW - timedelta(days=days), good, kind, run)


def doomed(items: list[RetentionItem], days: int = 30, max_backups: int = 50,
           **gfs: int) -> list[str]:
    return plan_retention(items, NOW, RetentionPolicy(days, max_backups, **gfs)).delete


def test_retention_days_and_max_together() -> None:
    items = [item("g0", 0), item("g1", 1), item("g2", 2), item("g3", 3), item("g40", 40)]
    # max 3: g3 goes (4th newest); 30 days: g40 goes too.
    assert doomed(items, 30, 3) == ["g3", "g40"]


def test_retention_never_deletes_newest_good() -> None:
    items = [item("old_good", 100), item("newer_failed", 1, good=False)]
    assert doomed(items, 30, 5) == []


def test_retention_failed_ones_do_not_count_as_kept() -> None:
    items = [item("f0", 0, False), item("f1", 0.5, False), item("g1", 1), item("g2", 2),
             item("g3", 3), item("f4", 4, False)]
    # max 2 good: g1, g2 kept; g3 goes; f4 older than the newest good goes;
    # f0/f1 are newer than any good one and younger than 30 days: kept for now.
    assert doomed(items, 30, 2) == ["g3", "f4"]


def test_retention_zero_days_keeps_only_newest_good() -> None:
    items = [item("g1", 1), item("g2", 2), item("f", 0.1, False)]
    assert doomed(items, 0, 50) == ["f", "g2"]


def test_retention_old_failed_goes_even_without_good() -> None:
    items = [item("f_old", 60, False), item("f_new", 1, False)]
    assert doomed(items, 30, 5) == ["f_old"]


def test_max_backups_counts_per_kind_and_keeps_the_only_full() -> None:
    # The case: five small pre-change backups must not push out the one full backup.
    items = [item("full", 10)] + [item(f"pc{n}", n, kind="pre-change", run=f"r{n}")
                                  for n in range(5)]
    assert "full" not in doomed(items, 30, 2)
    assert doomed(items, 30, 2) == []  # every run is newer than the full backup: all kept


def test_runs_older_than_a_newer_full_backup_follow_max_backups() -> None:
    items = ([item("full_new", 0.5), item("full_old", 10)]
             + [item(f"pc{n}", n + 1, kind="pre-change", run=f"r{n}") for n in range(5)])
    # r0..r4 are older than full_new: only the most recent run (r0) is protected; max 2 per
    # kind keeps pc0, pc1; the two full backups are within max as well.
    assert doomed(items, 30, 2) == ["pc2", "pc3", "pc4"]
    reasons = plan_retention(items, NOW, RetentionPolicy(30, 2)).reasons
    assert reasons["pc0"] == "rollback point of run r0"
    assert reasons["full_new"] == "newest good full backup"


def test_rollback_point_of_most_recent_run_is_kept_however_old() -> None:
    items = [item("full", 1), item("pc_a", 90, kind="pre-change", run="a"),
             item("pc_a2", 89, kind="pre-change", run="a"),  # a resumed run's second backup
             item("pc_b", 100, kind="pre-change", run="b")]
    assert doomed(items, 30, 50) == ["pc_b"]


def test_runs_newer_than_newest_full_are_kept_beyond_max_and_days() -> None:
    items = [item("full", 60), item("pr", 40, kind="pre-restore", run="x"),
             item("pc", 50, kind="pre-change", run="y"),
             item("pc_old", 70, kind="pre-change", run="z")]
    # x and y are newer than the full backup: kept though older than 30 days; z is not
    # (older than the full backup, not the most recent run), and is older than 30 days.
    assert doomed(items, 30, 1) == ["pc_old"]


def test_newest_full_that_is_not_good_does_not_count() -> None:
    # A damaged full backup (prune verifies the newest ones) protects nothing: the older
    # good one is the newest verified full backup and stays; the damaged one goes as soon
    # as a newer good backup exists.
    items = [item("full_bad", 1, good=False), item("full_ok", 5), item("full_older", 6)]
    assert doomed(items, 30, 1) == ["full_older"]
    assert doomed(items + [item("full_new", 0.5)], 30, 1) == ["full_bad", "full_ok",
                                                               "full_older"]


def test_grandfather_father_son_keeps_fulls_per_period() -> None:
    # One full backup every 12 hours for 100 days: max_backups 1, 1 day.
    items = [item(f"f{n:03d}", n / 2) for n in range(200)]
    kept = {i.id for i in items} - set(doomed(items, 1, 1, keep_daily=3, keep_weekly=2,
                                              keep_monthly=2))
    days = {NOW.date() - timedelta(days=d) for d in range(3)}
    assert {i.id for i in items if i.id in kept and i.created.date() in days} == \
        {"f000", "f002", "f004"}  # the newest of each of the last 3 days (f001 is today too)
    months = {(i.created.year, i.created.month) for i in items if i.id in kept}
    assert (2024, 5) in months and (2024, 6) in months and (2024, 4) not in months
    # f000: newest (max 1, and daily); 2 more days; the newest of last week (a Sunday's
    # backups are the newest of week 26 → f000 again; week 25 → Sunday June 23); the newest
    # of May. Nothing else.
    assert len(kept) == 5, sorted(kept)


def test_gfs_off_by_default_and_only_for_full() -> None:
    items = [item("f0", 0), item("f1", 1), item("p0", 0, kind="tables"),
             item("p1", 1, kind="tables")]
    assert sorted(doomed(items, 30, 1)) == ["f1", "p1"]
    assert doomed(items, 30, 1, keep_daily=2) == ["p1"]


def test_ids_labels_and_stamps() -> None:
    assert backup_id("shop", "20240101_120000", None) == "shop_20240101_120000"
    assert backup_id("shop", "20240101_120000", "pre-restore", 2) == \
        "shop_20240101_120000_pre-restore_2"
    assert clean_label("nightly run/1") == "nightly-run-1"
    assert clean_label("///") is None
    assert parse_stamp("my_db_20240101_120000_x", "my_db") == datetime(2024, 1, 1, 12, 0, 0)
    assert parse_stamp("20230505_000000_20240101_120000", "20230505_000000") == \
        datetime(2024, 1, 1, 12, 0, 0)


def test_classify_section_lines() -> None:
    assert classify(b"-- Table structure for table `a``b c`") == ("table", "a`b c")
    assert classify(b"-- Temporary view structure for view `v`") == ("view", "v")
    assert classify(b"-- Final view structure for view `v`") == ("view_final", "v")
    assert classify(b"-- Dumping routines for database 'x'") == ("routines", None)
    assert classify(b"-- Dumping data for table `a`") is None


DUMP = (b"/*M!999999\\- enable the sandbox mode */ \n-- MariaDB dump\n/*!40101 SET NAMES */;\n"
        b"\n--\n-- Table structure for table `a`\n--\n\nCREATE TABLE a;\n"
        b"--\n-- Dumping data for table `a`\n--\nINSERT INTO a VALUES (1,'x\\n--\\n-- T');\n"
        b"\n--\n-- Table structure for table `b``q`\n--\n\nCREATE TABLE b;\n"
        b"\n--\n-- Temporary table structure for view `v`\n--\nCREATE VIEW v;\n"
        b"\n--\n-- Final view structure for view `v`\n--\nCREATE VIEW v2;\n"
        b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n-- Dump completed on 2024-01-01\n")


def split(data: bytes, size: int) -> list[tuple[str, str | None, bytes]]:
    sections: list[list] = [["header", None, b""]]
    splitter = SectionSplitter(lambda b: sections[-1].__setitem__(2, sections[-1][2] + b),
                               lambda k, n: sections.append([k, n, b""]))
    for i in range(0, len(data), size):
        splitter.feed(data[i:i + size])
    splitter.close()
    assert splitter.footer_seen
    return [tuple(s) for s in sections]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 11, 64, 4096])
def test_splitter_same_sections_whatever_the_read_size(size: int) -> None:
    sections = split(DUMP, size)
    assert [(k, n) for k, n, _ in sections] == [
        ("header", None), ("table", "a"), ("table", "b`q"), ("view", "v"), ("view_final", "v"),
        ("footer", None)]
    joined = b"".join(s[2] for s in sections)
    assert joined == DUMP[DUMP.index(b"\n") + 1:]  # everything but the sandbox line
    assert sections[1][2].startswith(b"--\n-- Table structure for table `a`")
    assert sections[-1][2].startswith(b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;")


def test_frame_writer_frames_decode_alone_and_together() -> None:
    out = io.BytesIO()
    writer = FrameWriter(out, level=3)
    splitter = SectionSplitter(writer.write, writer.section)
    splitter.feed(DUMP)
    splitter.close()
    frames = writer.finish()
    data = out.getvalue()
    assert sum(f.length for f in frames) == len(data)
    whole = zstandard.ZstdDecompressor().decompressobj()
    assert len(frames) == 6
    for f in frames:
        piece = zstandard.ZstdDecompressor().decompressobj().decompress(
            data[f.offset:f.offset + f.length])
        assert len(piece) == f.raw_length
    # `zstd -dc` semantics: all frames one after the other.
    text = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(data), read_across_frames=True)
    assert text.read() == DUMP[DUMP.index(b"\n") + 1:]
    assert whole is not None


FOOTER = b"/*!40103 SET TIME_ZONE=@OLD_TIME_ZONE */;\n\n-- Dump completed on 2024-01-01\n"
TABLE_SECTION = (
    b"--\n-- Table structure for table `big`\n--\n\nDROP TABLE IF EXISTS `big`;\n"
    b"CREATE TABLE `big` (id int) ENGINE=InnoDB;\n\n"
    b"--\n-- Dumping data for table `big`\n--\n\nLOCK TABLES `big` WRITE;\n"
    b"/*!40000 ALTER TABLE `big` DISABLE KEYS */;\n"
    + b"".join(b"INSERT INTO `big` VALUES\n(%d),\n(%d);\n" % (i, -i) for i in range(40))
    + b"/*!40000 ALTER TABLE `big` ENABLE KEYS */;\nUNLOCK TABLES;\n"
    b"DELIMITER ;;\n/*!50003 CREATE TRIGGER t BEFORE INSERT ON `big` FOR EACH ROW\n"
    b"INSERT INTO `other` VALUES (1) */;;\nDELIMITER ;\n\n"
)


@pytest.mark.parametrize("chunk", [1, 7, 64, 333, 100_000])
def test_data_splitter_cuts_rows_at_statements_in_any_read_size(chunk: int) -> None:
    pieces: list[list] = [["header", None, b""]]

    def on_section(kind: str, name: str | None) -> None:
        pieces.append([kind, name, b""])

    def on_bytes(data: bytes) -> None:
        pieces[-1][2] += data

    rows = DataSplitter(on_bytes, on_section, frame_bytes=200)
    splitter = SectionSplitter(rows.write, rows.section)
    dump = b"-- header\n" + TABLE_SECTION + FOOTER
    for i in range(0, len(dump), chunk):
        splitter.feed(dump[i:i + chunk])
    splitter.close()
    rows.close()
    assert b"".join(p[2] for p in pieces) == dump
    kinds = [p[0] for p in pieces]
    assert kinds[:3] == ["header", "table", "table_lock"]
    assert kinds[-2:] == ["table_end", "footer"] and kinds.count("table_data") > 3
    data = [p[2] for p in pieces if p[0] == "table_data"]
    assert all(d.startswith(b"INSERT INTO `big` VALUES\n") and d.endswith(b";\n") for d in data)
    assert all(len(d) < 200 + 40 for d in data)
    assert pieces[2][2].startswith(b"LOCK TABLES") and b"INSERT" not in pieces[2][2]
    end = pieces[kinds.index("table_end")][2]
    assert end.startswith(b"/*!40000 ALTER TABLE `big` ENABLE KEYS */;") and b"TRIGGER" in end
