"""Restore logic without a server: DDL to work tables, triggers, views, renaming INSERTs."""

from __future__ import annotations

import pytest

from dumpload.backup import worktables

SECTION = (b"""--
-- Table structure for table `c`
--

DROP TABLE IF EXISTS `c`;
/*!40101 SET character_set_client = utf8mb4 */;
CREATE TABLE `c` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `pid` int(11) DEFAULT NULL,
  `v` varchar(10) DEFAULT 'a;b',
  `doc` text,
  PRIMARY KEY (`id`),
  UNIQUE KEY `uv` (`v`),
  KEY `fk_c` (`pid`),
  FULLTEXT KEY `ft` (`doc`),
  CONSTRAINT `fk_c` FOREIGN KEY (`pid`) REFERENCES `p` (`id`) ON DELETE CASCADE,
  CONSTRAINT `fk_x` FOREIGN KEY (`pid`) REFERENCES `other`.`p` (`id`)
) ENGINE=InnoDB AUTO_INCREMENT=7 DEFAULT CHARSET=utf8mb4
/*!50100 PARTITION BY HASH (`id`)
PARTITIONS 2 */;
/*!40101 SET character_set_client = @saved_cs_client */;

--
-- Dumping data for table `c`
--

LOCK TABLES `c` WRITE;
/*!40000 ALTER TABLE `c` DISABLE KEYS */;
INSERT INTO `c` VALUES
(1,1,'x;\\nINSERT INTO `c` VALUES',NULL);
/*!40000 ALTER TABLE `c` ENABLE KEYS */;
UNLOCK TABLES;
/*!50003 SET sql_mode              = 'STRICT_TRANS_TABLES' */ ;
DELIMITER ;;
"""
    b"/*!50003 CREATE*/ /*!50017 DEFINER=`root`@`127.0.0.1`*/ /*!50003 trigger tr1 before "
    b"insert on c for each row begin set new.v = concat(new.v, ';*/'); end \n*/;;\n"
    b"/*!50003 CREATE*/ /*!50017 DEFINER=`a b`@`%`*/ /*!50003 TRIGGER `tr2` AFTER DELETE ON "
    b"`c` FOR EACH ROW SET @x = 1 */;;\nDELIMITER ;\n"
)


def test_extract_create_keeps_options_and_partitioning() -> None:
    create = worktables.extract_create(SECTION)
    assert create.startswith("CREATE TABLE `c` (\n") and create.endswith("PARTITIONS 2 */")
    assert "DEFAULT 'a;b'" in create and "LOCK TABLES" not in create


def test_work_definition_renames_strips_fks_and_defers_indexes() -> None:
    d = worktables.work_definition(worktables.extract_create(SECTION), "_dl_shadow_c")
    assert d.create_sql.startswith("CREATE TABLE `_dl_shadow_c` (\n")
    assert "FOREIGN KEY" not in d.create_sql and "FULLTEXT KEY `ft`" in d.create_sql
    assert ",\n)" not in d.create_sql and "FULLTEXT KEY `ft` (`doc`)\n) ENGINE" in d.create_sql
    assert d.index_clauses == ["UNIQUE KEY `uv` (`v`)", "KEY `fk_c` (`pid`)"]
    assert d.fk_clauses[0].startswith("CONSTRAINT `fk_c` FOREIGN KEY") and len(d.fk_clauses) == 2
    assert d.parents == ["p"]  # the other schema's table is not in the backup's FK groups
    assert "AUTO_INCREMENT=7" in d.create_sql


def test_triggers_views_and_definers() -> None:
    triggers = worktables.parse_triggers(SECTION)
    assert [(t.name, t.table, t.timing, t.event, t.order, t.sql_mode) for t in triggers] == [
        ("tr1", "c", "BEFORE", "INSERT", 1, "STRICT_TRANS_TABLES"),
        ("tr2", "c", "AFTER", "DELETE", 2, "STRICT_TRANS_TABLES")]
    assert triggers[0].statement == "begin set new.v = concat(new.v, ';*/'); end"
    assert triggers[1].statement == "SET @x = 1" and not triggers[1].definer
    view = (b"/*!50001 DROP VIEW IF EXISTS `v1`*/;\n/*!50001 CREATE ALGORITHM=UNDEFINED */\n"
            b"/*!50013 DEFINER=`root`@`127.0.0.1` SQL SECURITY INVOKER */\n"
            b"/*!50001 VIEW `v1` AS select `c`.`v` AS `v` from `c` where `c`.`v` like '%;%' */;\n"
            b"/*!50001 SET character_set_client      = @saved_cs_client */;\n")
    assert worktables.view_statement(view) == (
        "CREATE OR REPLACE ALGORITHM=UNDEFINED DEFINER=CURRENT_USER SQL SECURITY INVOKER "
        "VIEW `v1` AS select `c`.`v` AS `v` from `c` where `c`.`v` like '%;%'")
    assert worktables.rewrite_definer(b"CREATE DEFINER=`root`@`localhost` PROCEDURE p") == \
        b"CREATE DEFINER=CURRENT_USER PROCEDURE p"
    assert worktables.rewrite_definer(b"/*!50117 DEFINER=`x`@`%`*/") == \
        b"/*!50117 DEFINER=CURRENT_USER*/"


def _through(renamer: worktables.InsertRenamer, data: bytes, size: int) -> bytes:
    out = b"".join(renamer.feed(data[i:i + size]) for i in range(0, len(data), size))
    return out + renamer.close()


@pytest.mark.parametrize("size", [1, 3, 17, 64, 1 << 20])
def test_insert_renamer_keeps_only_the_rows_renamed(size: int) -> None:
    out = _through(worktables.InsertRenamer("c", "_dl_shadow_c", inside=False), SECTION, size)
    assert out == (b"\nINSERT INTO `_dl_shadow_c` VALUES\n"
                   b"(1,1,'x;\\nINSERT INTO `c` VALUES',NULL);\n")
    rows = b"INSERT INTO `c` VALUES\n(1);\nINSERT INTO `c` VALUES\n(2);\n"
    out = _through(worktables.InsertRenamer("c", "w`x", inside=True), rows, size)
    assert out == b"\nINSERT INTO `w``x` VALUES\n(1);\nINSERT INTO `w``x` VALUES\n(2);\n"


DUMP = (b"-- MariaDB dump\n--\n\n/*M!999999\\- enable the sandbox mode */\n"
        b"/*!40101 SET NAMES utf8mb4 */;\n\n"
        b"INSERT INTO `c` VALUES\n(1,'a;\\nb','x;\\r\\n'),\n(2,'--',NULL);\n"
        b"INSERT INTO `other` VALUES (3,';');\n--\n\nSELECT\n1;\nSELECT 2")


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, 1 << 20])
def test_statement_splitter_cuts_whole_statements_and_renames(size: int) -> None:
    splitter = worktables.StatementSplitter(("c", "w`x"))
    out = [s for i in range(0, len(DUMP), size) for s in splitter.feed(DUMP[i:i + size])]
    assert out + splitter.close() == [
        b"/*!40101 SET NAMES utf8mb4 */;",
        b"INSERT INTO `w``x` VALUES\n(1,'a;\\nb','x;\\r\\n'),\n(2,'--',NULL);",
        b"INSERT INTO `other` VALUES (3,';');",
        b"SELECT\n1;", b"SELECT 2"]


def test_statement_splitter_after_the_renamer_of_an_older_backup() -> None:
    renamer = worktables.InsertRenamer("c", "_dl_shadow_c", inside=False)
    splitter = worktables.StatementSplitter()
    out = splitter.feed(_through(renamer, SECTION, 5)) + splitter.close()
    assert out == [b"INSERT INTO `_dl_shadow_c` VALUES\n(1,1,'x;\\nINSERT INTO `c` VALUES',NULL);"]
