"""Replace the data of target tables with the source's: the server copy.

Steps per run (tables of one source database into one target database):
1. Plan (`plan`): strategy per table, refusals before any write.
2. Shadow tables (PK only) for the `shadow` tables.
3. One snapshot: a coordinator session holds `LOCK TABLES ... READ` on the source tables
   while every worker's client opens `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then
   unlocks. Every table is read inside one of those snapshots, so parent and child tables
   copied together are consistent.
4. In that snapshot: `delta` tables (differing key ranges only, or a fall-back to a
   shadow), then the `in-place` batches (one transaction each, `inplace`), then the
   chunks of the shadow tables through the engine (`engine`: load, retries, index build,
   verification, group swap).

Writes on the target only `_dl_shadow_*` tables until the swap, and live rows only inside
the in-place and delta transactions; never writes the source.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack

import pymysql

from dumpload import swap
from dumpload.config import Config, DatabaseConfig
from dumpload.data import chunks as chunking
from dumpload.data import delta, encode, inplace, shadow
from dumpload.data.engine import (
    CopyFailed,
    CopyReport,
    Feed,
    Job,
    Load,
    Run,
    TableResult,
    Tools,
    alive,
    groups,
    hold_writes,
    load_chunk,
    record,
    run_workers,
    striped,
    swap_groups,
)
from dumpload.data.plan import (
    DELTA,
    IN_PLACE,
    SHADOW,
    TablePlan,
    in_place_limit,
    no_delta_reason,
    plan_copy,
    plan_tables,
    preflight,
    refresh_shadows,
    sessions,
)
from dumpload.data.stream import LoadFailed, SourceGone, SourceReader, open_snapshot
from dumpload.data.tables import schema_fks
from dumpload.data.verify import Sums, TableCheck, VerifyReport, session_kind
from dumpload.db import Session
from dumpload.errors import EXIT_VERIFY, DataError, DumpLoadError
from dumpload.progress import NullProgress, Progress
from dumpload.tools import defaults_file, find_binary, wire_args

log = logging.getLogger(__name__)

__all__ = ["CopyFailed", "CopyReport", "TablePlan", "TableResult", "copy_tables", "open_snapshot",
           "plan_copy", "preflight", "striped"]  # names other modules imported from here

def copy_tables(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
                tables: Sequence[str], *, threads: int | None = None,
                progress: Progress | None = None, plans: list[TablePlan] | None = None,
                verify: bool = False, metrics: bool = True,
                lock_target: bool = False, full: bool = False) -> CopyReport:
    """Replace the target's rows of `tables` with the source's, atomically per FK group.

    With `verify`, each loaded shadow is compared with the source's snapshot (per key
    range, while its indexes are built) before the swap: a mismatching table is not
    swapped (status "mismatch"; `report.verify` has the details; the caller decides the
    exit code, e.g. 8). Metrics lines go to
    `performance_metrics.log` unless `metrics=False`. Raises `DataError` (before any
    write) when a table cannot be copied, and `CopyFailed` (with the report) when some
    tables were not replaced. Never prints.
    """
    threads = max(1, threads or config.settings.threads)
    progress = progress or NullProgress()
    started = time.monotonic()
    with ExitStack() as stack:
        src, dst = stack.enter_context(sessions(config, source_env, target_env))
        if plans:  # planned before a confirmation: the shadows follow the tables as they are now
            refresh_shadows(dst, plans)
        plans = plans or plan_tables(src, dst, tables, threads,
                                     in_place_limit(config.settings),
                                     no_delta=no_delta_reason(full=full,
                                                              lock_target=lock_target))
        tools = _tools(stack, src, dst)  # refuses an impossible `compress: on` before writes
        run = Run(plans, progress, target_env, threads, config.settings)
        if lock_target:
            # In-place tables need no holder: their transaction's row locks block writes.
            run.holders = stack.enter_context(hold_writes(
                config, target_env, [p for p in plans if p.mode != IN_PLACE]))
        run.guard = {fp.table: fp for fp in swap.fingerprints(dst, run.plans)}
        run.delta_kind = session_kind(src, dst)
        run.kind = run.delta_kind if verify else ""
        for plan in plans:
            progress.add_table(plan.table, plan.rows_estimate, plan.bytes_estimate)
        try:
            for plan in plans:
                if plan.mode == SHADOW:
                    run.shadows[plan.table] = shadow.create_shadow(dst, plan.shadow_definition())
            small = [p.table for p in plans if p.mode == IN_PLACE]
            fks = schema_fks(dst)
            work = inplace.batches(groups(dst, small, fks),
                                   {p.table: p.bytes_estimate for p in plans})
            deltas = [p.table for p in plans if p.mode == DELTA]
            width = threads if deltas else min(threads, max(len(run.queue.queue), len(work), 1))
            _copy_all(tools, src, dst, run, width, work, fks, deltas)
            swap_groups(config, target_env, dst, run)
        finally:
            leftover = [s for t, s in run.shadows.items() if run.results[t].status != "swapped"]
            with contextlib.suppress(DumpLoadError, pymysql.err.Error):
                shadow.drop_shadows(alive(dst, config, target_env), leftover)
    report = CopyReport(list(run.results.values()), time.monotonic() - started, threads)
    if verify:
        report.verify = VerifyReport([run.checks.get(t) or TableCheck(t, error=r.error)
                                      for t, r in run.results.items()])
    if metrics:
        record(config, source_env, target_env, report)
    if run.fatal is not None and not isinstance(run.fatal, DumpLoadError):
        raise run.fatal
    if not report.ok:
        failed = {r.table: r.error for r in report.tables if r.status != "swapped"}
        first = next(iter(failed.items()))
        error = CopyFailed(f"{len(failed)} of {len(report.tables)} table(s) not replaced on "
                           f"{target_env.name} (old data kept): {first[0]}: {first[1]}", report,
                           hint="see the run log for every table's error; fix it and run "
                           "`dumpload data` again")
        if any(r.status == "mismatch" for r in report.tables):
            error.exit_code = EXIT_VERIFY  # verification failed: exit 8 as DESIGN.md says
        raise error
    return report


def _tools(stack: ExitStack, src: Session, dst: Session) -> Tools:
    sb = find_binary("client", src.server.flavor)
    tb = find_binary("client", dst.server.flavor)
    wires = wire_args(src.env, sb, src.server), wire_args(dst.env, tb, dst.server)
    sd = stack.enter_context(defaults_file(src.env, sb))
    td = stack.enter_context(defaults_file(dst.env, tb))
    return Tools(sb, tb, sd, td, src.env.database, dst.env.database, src.server.flavor,
                  *wires)


def _copy_all(tools: Tools, src: Session, dst: Session, run: Run, workers: int,
              small: list[list[str]], fks: list[shadow.ForeignKey], deltas: list[str]) -> None:
    """Every table read in one snapshot: first the delta tables (a too-big delta joins the
    shadow tables), then the in-place batches, then the chunks of the shadow tables (the
    same readers, so all see the same moment of the source)."""
    readers = open_snapshot(src, tools.source_binary, tools.source_defaults, list(run.plans),
                            workers, raw=False, wire=tools.source_wire)
    try:
        for table in deltas:
            _copy_delta(tools, src, dst, run, readers, table, workers)
        if small:
            _replace_small(tools, run, readers, small, fks)
        run_workers(run, [_copy_job(tools, run, r) for r in readers])
    finally:
        for r in readers:
            r.close()
    if isinstance(run.fatal, SourceGone):
        for table, result in run.results.items():
            if result.status not in ("loaded", "failed", "swapped"):
                run.fail(table, run.fatal)


def _copy_delta(tools: Tools, src: Session, dst: Session, run: Run,
                readers: list[SourceReader], table: str, workers: int) -> None:
    """One delta table (`delta`); when its delta is too big, it becomes a shadow table
    whose chunks join the queue."""
    try:
        if delta.copy_delta(run, readers, src, table, tools.source_flavor):
            return
    except SourceGone as exc:
        run.fatal = exc
        run.fail(table, exc)
        return
    except DumpLoadError as exc:
        run.fail(table, exc)
        return
    except pymysql.err.MySQLError as exc:
        run.fail(table, DataError(f"{table}: {exc}"))
        return
    plan = run.plans[table]
    plan.mode = SHADOW
    run.shadows[table] = shadow.create_shadow(dst, plan.shadow_definition())
    for chunk in striped(plan.chunks, workers):
        run.queue.put(chunk)


def _replace_small(tools: Tools, run: Run, readers: list[SourceReader],
                   batches: list[list[str]], fks: list[shadow.ForeignKey]) -> None:
    """The in-place batches (`inplace`), one target session and one reader per worker."""
    work: queue.Queue[list[str]] = queue.Queue()
    for batch in batches:
        work.put(batch)

    def worker(reader: SourceReader) -> None:
        session: Session | None = None
        try:
            while run.fatal is None:
                try:
                    batch = work.get_nowait()
                except queue.Empty:
                    return
                members = set(batch)
                related = [fk for fk in fks if fk.table in members or (
                    fk.ref_table in members and fk.ref_schema == run.target_env.database)]
                try:
                    session = session or inplace.open_session(run.target_env, run.settings)
                    session = inplace.replace_batch(run, reader, session, batch, related,
                                                    tools.source_flavor)
                except DumpLoadError as exc:
                    if isinstance(exc, SourceGone):
                        run.fatal = exc
                    for t in batch:
                        run.fail(t, exc)
                except BaseException as exc:  # a bug: stop everything, report it
                    run.fatal = exc
                    for t in batch:
                        run.fail(t, exc)
        finally:
            if session is not None:
                session.close()

    threads = [threading.Thread(target=worker, args=(r,), name=f"dumpload-inplace-{i}",
                                daemon=True) for i, r in enumerate(readers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _copy_job(tools: Tools, run: Run, reader: SourceReader) -> Job:
    sent = [reader.bytes_sent()]  # the snapshot's setup is not any table's traffic

    def job(chunk: chunking.Chunk) -> Sums | None:
        try:
            return copy_chunk(chunk)
        finally:
            now = reader.bytes_sent()
            with run.lock:
                run.results[chunk.table].source_wire_bytes += now - sent[0]
            sent[0] = now

    def copy_chunk(chunk: chunking.Chunk) -> Sums | None:
        info = run.plans[chunk.table].info
        assert info is not None
        flavor = tools.source_flavor
        # First, in this reader's snapshot (so exactly the rows that are then copied): the
        # count, the checksum for the verification and whether a string reads as NULL.
        census = encode.census_sql(chunk.table, info.columns, chunk.where, run.kind, flavor)
        rows, total, null_words = (None, 0, 0) if census is None else _ints(reader, census)
        parts = encode.client_parts(chunk.table, info.copied_columns, chunk.where, flavor,
                                    null_words=null_words > 0)
        loads: list[Load] = [(_stream_feed(reader, p.select), p.spec) for p in parts]
        loaded = load_chunk(run.settings, tools, run, chunk, loads)
        if rows is not None and loaded != rows:
            raise LoadFailed(f"{chunk.table} chunk {chunk.index} ({chunk.describe()}): the "
                             f"source has {rows} rows but {loaded} were loaded",
                             retryable=False, hint="the old rows are kept; run again, and if "
                             "it repeats, report it with the run log")
        return (rows, total) if run.kind and rows is not None else None
    return job


def _ints(reader: SourceReader, sql: str) -> list[int]:
    out = bytearray()
    reader.stream(sql, out.extend)
    return [int(x) for x in out.decode().split("\t")]


def _stream_feed(reader: SourceReader, sql: str | None) -> Feed:
    """A feed that streams the rows `sql` selects from the source client into a sink."""
    def feed(sink: Callable[[bytes], None]) -> int:
        return reader.stream(sql, sink)
    return feed
