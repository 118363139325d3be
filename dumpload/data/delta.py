"""Delta copy: replace only the key ranges of a large table that differ, in one transaction.

For a table planned `delta` (bigger than `in_place_max_mb`, a key that can be cut into
ranges, no trigger, no foreign key in or out, transactional), inside the copy's source
snapshot:

1. compare: the table is cut into fine key ranges (about `RANGE_BYTES` each); each range's
   count and checksum is computed on the source (in the snapshot the rows are then read
   from) and on the live target, in parallel.
2. decide: when the differing ranges hold at most `MAX_FRACTION` of the rows (either
   side), they are replaced in place; otherwise the table falls back to the full shadow
   copy (the caller's job: `copy_delta` returns False).
3. replace, by the rules of `inplace` (one target transaction): DELETE each differing
   range, the write guard, LOAD each range from the snapshot, each range's checksum
   against the source's, COMMIT. Readers see the whole table old or new; a failure or a
   kill before COMMIT leaves it old.

Ranges are half-open, the first open below and the last open above, so together they
cover every key: rows appended past the target's highest key, deleted rows, updates and
NULL changes all fall in some range whose checksum then differs (the row hash marks NULL
apart from every string).

May touch: the rows of the table's differing ranges, only inside its transaction.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from dumpload.data import chunks as chunking
from dumpload.data import encode, inplace
from dumpload.data.stream import SourceReader
from dumpload.data.verify import RangeMismatch, Sums, TableCheck, combine, table_checksum
from dumpload.db import Session, connect
from dumpload.errors import VerifyError
from dumpload.sqltext import quote

if TYPE_CHECKING:
    from dumpload.data.engine import Run

log = logging.getLogger(__name__)

RANGE_BYTES = 4 * 1024 * 1024   # compared range size: a 1 % drift replaces ~1 % of the rows
RANGE_ROWS = 5_000              # ... and at most about this many rows per range
MAX_RANGES = 1024
MAX_FRACTION = 0.25             # above this share of differing rows: the full shadow copy


def range_count(data_bytes: int, rows: int) -> int:
    """How many ranges a table of `data_bytes` and `rows` is compared in (pure)."""
    return max(1, min(MAX_RANGES, max(math.ceil(data_bytes / RANGE_BYTES),
                                      math.ceil(rows / RANGE_ROWS))))


def worth_it(differing: list[tuple[Sums, Sums]], source_rows: int, target_rows: int) -> bool:
    """Whether replacing the differing ranges (source sums, target sums each) in place
    beats a full copy: they hold at most MAX_FRACTION of the table's rows (pure)."""
    changed = sum(max(s[0], t[0]) for s, t in differing)
    return changed <= MAX_FRACTION * max(source_rows, target_rows, 1)


def compare(run: Run, readers: list[SourceReader], table: str, ranges: list[chunking.Chunk],
            flavor: str) -> dict[int, tuple[Sums, Sums]]:
    """{range index: (source sums, target sums)} for every range; sources read in the
    readers' snapshot, targets on the live table.

    The two sides do not wait for each other: each reader works through all ranges on the
    source while as many target sessions work through them on the target, so both
    servers stay busy until their own side is done (pairing each range's two queries
    left one side idle whenever the other was slower)."""
    info = run.plans[table].info
    assert info is not None
    source: dict[int, Sums] = {}
    target: dict[int, Sums] = {}
    errors: list[BaseException] = []

    def drain(work: queue.Queue[chunking.Chunk], sums: Callable[[str], Sums],
              out: dict[int, Sums]) -> None:
        while not errors:
            try:
                r = work.get_nowait()
            except queue.Empty:
                return
            try:
                out[r.index] = sums(r.where)
            except BaseException as exc:  # re-raised by compare
                errors.append(exc)

    def source_side(reader: SourceReader) -> None:
        sql = partial(encode.checksum_sql, info.name, info.columns, kind=run.delta_kind)
        drain(source_work, lambda where: _reader_sums(reader, sql(where)), source)

    def target_side() -> None:
        try:
            session = connect(run.target_env, run.settings)
        except BaseException as exc:
            errors.append(exc)
            return
        with contextlib.closing(session):
            drain(target_work, lambda where: table_checksum(session, info, where,
                                                            run.delta_kind), target)

    source_work, target_work = _queue(ranges), _queue(ranges)
    threads = [threading.Thread(target=source_side, args=(rd,), daemon=True,
                                name=f"dumpload-compare-source-{i}")
               for i, rd in enumerate(readers)]
    threads += [threading.Thread(target=target_side, daemon=True,
                                 name=f"dumpload-compare-target-{i}")
                for i in range(len(readers))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return {r.index: (source[r.index], target[r.index]) for r in ranges}


def _queue(ranges: list[chunking.Chunk]) -> queue.Queue[chunking.Chunk]:
    work: queue.Queue[chunking.Chunk] = queue.Queue()
    for r in ranges:
        work.put(r)
    return work


def _reader_sums(reader: SourceReader, sql: str) -> Sums:
    out = bytearray()
    reader.stream(sql, out.extend)
    rows, total = (int(x) for x in out.decode().split("\t"))
    return rows, total


def copy_delta(run: Run, readers: list[SourceReader], src: Session, table: str,
               flavor: str) -> bool:
    """Bring `table` in line by its differing ranges. False: the delta is too big, copy
    the table whole instead (nothing was written). Raises on failure (old rows kept)."""
    info = run.plans[table].info
    assert info is not None
    result = run.results[table]
    started = time.monotonic()
    ranges = chunking.plan_ranges(src, info, range_count(info.data_bytes, info.rows_estimate))
    sums = compare(run, readers, table, ranges, flavor)
    result.phases["compare"] = round(time.monotonic() - started, 3)
    differing = [r for r in ranges if sums[r.index][0] != sums[r.index][1]]
    source_rows = sum(s[0][0] for s in sums.values())
    target_rows = sum(s[1][0] for s in sums.values())
    if not worth_it([sums[r.index] for r in differing], source_rows, target_rows):
        log.info("%s: %d of %d key ranges differ: copied whole", table, len(differing),
                 len(ranges))
        result.strategy = "shadow (delta too big)"
        return False
    log.info("%s: %d of %d key ranges differ: replaced in place", table, len(differing),
             len(ranges))
    started = time.monotonic()
    if differing:
        session = inplace.open_session(run.target_env, run.settings)
        try:
            _replace(run, readers[0], session, table, differing, sums, flavor)
        finally:
            inplace.rollback(session)
            session.close()
    result.phases["delta"] = round(time.monotonic() - started, 3)
    result.chunks = len(differing)
    result.strategy = "delta"
    new = [sums[r.index][0] for r in ranges]
    run.checks[table] = TableCheck(table, source_rows=source_rows, target_rows=source_rows,
                                   source_checksum=combine(new), target_checksum=combine(new))
    result.status = "swapped"
    run.progress.table_done(table, "done")
    return True


def _replace(run: Run, reader: SourceReader, session: Session, table: str,
             differing: list[chunking.Chunk], sums: dict[int, tuple[Sums, Sums]],
             flavor: str) -> None:
    info = run.plans[table].info
    assert info is not None
    session.execute("START TRANSACTION")
    for r in differing:
        session.execute(f"DELETE FROM {quote(table)} WHERE {r.where}")
    inplace.check_guard(session, run.guard, [table], run.target_env.database)
    result = run.results[table]
    for r in differing:
        rows, size, got = inplace.copy_part(
            session, reader, info, r.where, run.delta_kind, flavor,
            lambda n, b: run.progress.advance(table, n, b))
        result.rows += rows
        result.bytes += size
        now = table_checksum(session, info, r.where, run.delta_kind)
        want = sums[r.index][0]
        if now != want or got != want:
            result.status = "mismatch"
            run.checks[table] = TableCheck(table, source_rows=want[0], target_rows=now[0],
                                           mismatches=[RangeMismatch(r.describe(), want, now)])
            raise VerifyError(f"{table}: key range {r.describe()} differs from the source "
                              "after its load; rolled back, the target keeps its old data",
                              hint="was the source or the target written to during the copy? "
                              "run again")
    session.execute("COMMIT")
