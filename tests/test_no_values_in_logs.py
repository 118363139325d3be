"""A failing statement never carries row values into messages or logs.

Each test makes a real server refuse a statement because of a row holding a distinctive
value, and checks that the run fails with its exit code while the value appears neither
on stderr nor in any file under the log folder (run log, error summary, histories).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable
from pathlib import Path

import pymysql
import pytest
import zstandard

from dumpload.config import load_config
from dumpload.db import session
from dumpload.errors import StructureError
from dumpload.schema.apply import apply_plan
from dumpload.schema.plan import Plan, Step
from tests.support import TestEnv


def distinctive() -> str:
    return f"DLVAL{uuid.uuid4().hex[:10]}"


def logs_holding(env: TestEnv, value: str) -> list[str]:
    return [str(p) for p in (env.folder / "logs").rglob("*")
            if p.is_file() and value.encode() in p.read_bytes()]


def rewrite_backup(manifest_path: Path, edit: Callable[[dict, bytes], bytes]) -> None:
    """Re-encode a backup with `edit(frame, raw)` applied to every frame, and update its
    manifest so that it still verifies: a damaged-but-consistent backup, as a server of
    another version or a hand-edited dump would give."""
    manifest = json.loads(manifest_path.read_text())
    path = manifest_path.with_name(manifest["file"])
    data = path.read_bytes()
    out, frames, raw_total = bytearray(), [], 0
    for frame in manifest["frames"]:
        raw = zstandard.ZstdDecompressor().decompressobj().decompress(
            data[frame["offset"]: frame["offset"] + frame["length"]])
        raw = edit(frame, raw)
        packed = zstandard.ZstdCompressor().compress(raw)
        frames.append({**frame, "offset": len(out), "length": len(packed),
                       "raw_length": len(raw)})
        out += packed
        raw_total += len(raw)
    path.write_bytes(bytes(out))
    manifest.update(frames=frames, sha256=hashlib.sha256(out).hexdigest(),
                    compressed_bytes=len(out), uncompressed_bytes=raw_total)
    manifest_path.write_text(json.dumps(manifest))


@pytest.mark.parametrize("fault", ["duplicate", "syntax"])
def test_a_failing_insert_in_a_restore_keeps_its_values_out(env: TestEnv, fault: str) -> None:
    value = "zz" + distinctive()  # sorts last: its row ends the echoed INSERT
    # Enough rows that the failing INSERT, which the client echoes whole, is far longer
    # than the stderr tail kept for the message.
    env.dst("CREATE TABLE t (v VARCHAR(40) PRIMARY KEY, n INT)",
            f"INSERT INTO t VALUES ('{value}', 1)",
            "INSERT INTO t SELECT CONCAT('other', seq), seq FROM seq_1_to_5000")
    created = env.run("backup", "create", "--env", "production", "--json")
    assert created.exit_code == 0, created.output
    doc = json.loads(created.stdout)
    manifest = Path(doc["path"]).with_name(doc["id"] + ".manifest.json")

    def edit(frame: dict, raw: bytes) -> bytes:
        row = f"('{value}',1)".encode()
        if row not in raw:
            return raw
        # duplicate: the row twice, so the INSERT fails on the primary key with the value
        # in the server's message; syntax: a broken INSERT, echoed by the server "near".
        bad = row + b"," + row if fault == "duplicate" else row + b" oops"
        return raw.replace(row, bad, 1)

    rewrite_backup(manifest, edit)
    assert env.run("backup", "verify", doc["id"]).exit_code == 0
    result = env.run_process("backup", "restore", doc["id"], "--env", "production", "--yes",
                             "--no-backup")
    assert result.returncode == 7, result.stdout + result.stderr
    assert "restor" in result.stderr
    assert value not in result.stdout + result.stderr
    assert logs_holding(env, value) == []


def test_a_unique_key_failing_on_copied_rows_keeps_its_values_out(env: TestEnv) -> None:
    """The target's unique key, built after the load, meets duplicate source rows."""
    value = distinctive()
    env.src("CREATE TABLE u (id INT PRIMARY KEY, code VARCHAR(40))",
            f"INSERT INTO u VALUES (1, '{value}'), (2, '{value}'), (3, 'x')")
    env.dst("CREATE TABLE u (id INT PRIMARY KEY, code VARCHAR(40), UNIQUE KEY uq (code))")
    result = env.run_process("data", "--yes", "--no-backup", "--tables", "u")
    assert result.returncode == 6, result.stdout + result.stderr
    assert "u" in result.stderr
    assert value not in result.stdout + result.stderr
    assert logs_holding(env, value) == []


def test_a_structure_change_failing_on_rows_keeps_its_values_out(env: TestEnv) -> None:
    """ADD UNIQUE on a target whose rows repeat a value: exit 5, the statement quoted
    with its literals elided, the duplicate value nowhere."""
    value = distinctive()
    env.src("CREATE TABLE s (id INT PRIMARY KEY, code VARCHAR(40) DEFAULT 'dflt', "
            "UNIQUE KEY uq (code))")
    env.dst("CREATE TABLE s (id INT PRIMARY KEY, code VARCHAR(40) DEFAULT 'dflt')",
            f"INSERT INTO s VALUES (1, '{value}'), (2, '{value}')")
    result = env.run_process("structure", "--yes", "--no-backup")
    assert result.returncode == 5, result.stdout + result.stderr
    # Refused by the preflight's duplicate check, or by the server's ALTER: either way
    # the message names the table and key, never the value.
    assert "duplicate" in result.stderr.lower() and "s" in result.stderr
    assert value not in result.stdout + result.stderr
    assert logs_holding(env, value) == []


def test_a_failing_insert_in_a_plan_is_quoted_without_its_values(
        env: TestEnv, caplog: pytest.LogCaptureFixture) -> None:
    """`apply_plan` quotes the failing statement (elided) and the server's message
    (elided); the PyMySQL error a session raises keeps its class and number."""
    caplog.set_level("INFO", logger="dumpload")
    value = distinctive()
    env.dst("CREATE TABLE p (id INT PRIMARY KEY, v VARCHAR(40))",
            f"INSERT INTO p VALUES (7, '{value}')")
    target = load_config(env.config_path).target
    insert = f"INSERT INTO `p` VALUES (7, '{value}'), (8, 0x{value.encode().hex()})"
    plan = Plan("development", "production",
                steps=(Step("seed_rows", "p", insert),), allow_unsafe=True)
    with session(target, load_config(env.config_path).settings) as s:
        with pytest.raises(StructureError) as caught:
            apply_plan(s, plan)
        with pytest.raises(pymysql.err.IntegrityError) as raw:
            s.execute(insert)
    message = str(caught.value)
    assert "statement: INSERT INTO `p` VALUES (?, ?), (?, ?)" in message
    assert "error 1062: Duplicate entry ? for key 'PRIMARY'" in message
    assert raw.value.args[0] == 1062 and value not in str(raw.value)
    assert raw.value.statement == "INSERT INTO `p` VALUES (?, ?), (?, ?)"  # type: ignore
    assert value not in message and value not in caplog.text
    assert "structure: INSERT INTO `p` VALUES (?, ?)" in caplog.text
