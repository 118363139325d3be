"""Replace the data of target tables with the source's: plan, stream, index, check, swap.

Steps per run (tables of one source database into one target database):
1. Inspect both sides; refuse (before any write) a table missing on the target or whose
   columns differ: the structure step owns structure.
2. Drop leftovers of an interrupted run; create one shadow per table (PK only).
3. One snapshot: a coordinator session holds `LOCK TABLES ... READ` on the source tables
   while every worker's client opens `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then
   unlocks. Every chunk of every table is read inside one of those snapshots, so parent
   and child tables copied together are consistent.
4. Workers take chunks (key ranges) from one queue. Per chunk, in the worker's snapshot:
   first its census (count, checksum, strings that print as NULL: `encode.census_sql`),
   then source client → Python relay → target `LOAD DATA`. A failed load is retried from
   the same snapshot after deleting the chunk's range in the shadow. When a table's last
   chunk is in, its deferred indexes are built while the shadow's per-range checksums are
   compared with the census.
5. Per group of tables linked by foreign keys: FK rows checked, then one atomic RENAME.
   A failed table fails its group; the group's shadows are dropped, old data stays.

Writes on the target only `_dl_shadow_*` tables until the swap; never writes the source.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import pymysql

from dumpload import swap
from dumpload.catalog import fk_groups
from dumpload.config import Config, DatabaseConfig, Settings
from dumpload.data import chunks as chunking
from dumpload.data import encode, shadow
from dumpload.data.stream import Loader, LoadFailed, SourceGone, SourceReader
from dumpload.data.tables import TableInfo, inspect_table
from dumpload.data.verify import (
    RangeMismatch,
    Sums,
    TableCheck,
    VerifyReport,
    combine,
    session_kind,
    table_checksum,
)
from dumpload.db import Session, connect
from dumpload.errors import EXIT_VERIFY, DataError, DumpLoadError, VerifyError
from dumpload.mdl import Holder, handoff, lock_tables, wait_until_waiting
from dumpload.progress import NullProgress, Progress
from dumpload.sqltext import quote
from dumpload.tools import Binary, ClientDefaults, defaults_file, find_binary, wire_args

log = logging.getLogger(__name__)


@dataclass
class TablePlan:
    """What will happen to one table (dry-run output, and the copy's work list)."""

    table: str
    rows_estimate: int
    bytes_estimate: int
    key: tuple[str, ...]
    chunks: list[chunking.Chunk]
    deferred_indexes: int
    foreign_keys: int
    info: TableInfo | None = field(default=None, repr=False)

    @property
    def strategy(self) -> str:
        if len(self.chunks) > 1:
            how = f"{len(self.chunks)} key-range chunks on `{self.chunks[0].column}`"
        else:
            how = "one stream" + ("" if self.key else " (no usable key)")
        return (f"{how}; shadow table, {self.deferred_indexes} deferred index(es), "
                f"{self.foreign_keys} FK(s) re-added, atomic rename")

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "rows_estimate": self.rows_estimate,
                "bytes_estimate": self.bytes_estimate, "key": list(self.key),
                "chunks": len(self.chunks), "strategy": self.strategy}


@dataclass
class TableResult:
    table: str
    rows: int = 0
    bytes: int = 0
    chunks: int = 0
    retries: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    status: str = "pending"   # pending, loaded, swapped, failed, mismatch
    error: str | None = None
    # What crossed each wire, by the servers' own counters on the copy's connections
    # (source `Bytes_sent` of the readers, target `Bytes_received` of the loaders):
    # compressed when compression is on, protocol framing and a little SQL included.
    source_wire_bytes: int = 0
    target_wire_bytes: int = 0

    @property
    def seconds(self) -> float:
        return round(sum(self.phases.values()), 3)

    @property
    def compression_ratio(self) -> float | None:
        """Bytes read from the source per byte the target received (> 1: compressed)."""
        return round(self.bytes / self.target_wire_bytes, 2) if self.target_wire_bytes else None

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "seconds": self.seconds,
                "compression_ratio": self.compression_ratio}


@dataclass
class CopyReport:
    tables: list[TableResult]
    seconds: float = 0.0
    threads: int = 1
    verify: VerifyReport | None = None

    @property
    def ok(self) -> bool:
        """Every table replaced (verification is judged separately: `verify.ok`)."""
        return all(t.status == "swapped" for t in self.tables)

    @property
    def rows(self) -> int:
        return sum(t.rows for t in self.tables)

    @property
    def bytes(self) -> int:
        return sum(t.bytes for t in self.tables)

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "seconds": round(self.seconds, 3), "threads": self.threads,
                "rows": self.rows, "bytes": self.bytes,
                "tables": [t.to_dict() for t in self.tables],
                "verify": self.verify.to_dict() if self.verify else None}


class CopyFailed(DataError):
    """Some tables were not replaced; `report` says which and why (others may be)."""

    def __init__(self, message: str, report: CopyReport, *, hint: str | None = None) -> None:
        super().__init__(message, hint=hint)
        self.report = report


# ---------------------------------------------------------------- planning
def check_structures(source: TableInfo, target: TableInfo | None, target_env: str) -> None:
    """Refuse a table whose target columns differ from the source's (exit 6)."""
    hint = "run `dumpload structure` first so the target has the source's structure"
    if target is None or not target.columns:
        raise DataError(f"table {source.name!r} does not exist on {target_env}", hint=hint)
    src = [c.signature for c in source.columns]
    dst = [c.signature for c in target.columns]
    if src != dst:
        diff = sorted(set(src) ^ set(dst)) or ["column order"]
        raise DataError(f"table {source.name!r}: columns differ between source and "
                        f"{target_env}: {diff[:4]}", hint=hint)


def _plan_one(src: Session, dst: Session, table: str, threads: int) -> TablePlan:
    info = inspect_table(src, table)
    if not info.columns:
        raise DataError(f"table {table!r} does not exist on {src.env.name}",
                        hint="check --tables / replication.data_tables")
    target = inspect_table(dst, table)
    check_structures(info, target, dst.env.name)
    split = shadow.split_create(table, shadow.show_create(dst, table))
    chunks = chunking.plan_chunks(src, info, threads)
    return TablePlan(table, info.rows_estimate, info.data_bytes, info.key, chunks,
                     len(split.index_clauses), len(split.fk_clauses), info)


def plan_tables(src: Session, dst: Session, tables: Sequence[str],
                threads: int) -> list[TablePlan]:
    """Plans for `tables`; raises `DataError` before any write if one cannot be copied."""
    return [_plan_one(src, dst, t, threads) for t in tables]


def plan_copy(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
              tables: Sequence[str], *, threads: int | None = None) -> list[TablePlan]:
    """What `copy_tables` would do (rows, bytes, chunks, strategy). Writes nothing."""
    threads = threads or config.settings.threads
    with _sessions(config, source_env, target_env) as (src, dst):
        return plan_tables(src, dst, tables, threads)


def preflight(config: Config, target_env: DatabaseConfig) -> None:
    """What a copy needs of the target, checked before the run's first change (backup,
    ALTERs): LOAD DATA LOCAL allowed. Raises `DataError` (exit 6) with the fix."""
    with contextlib.closing(connect(target_env, config.settings)) as dst:
        if not int(dst.scalar("SELECT @@GLOBAL.local_infile") or 0):
            raise DataError(
                f"{target_env.name} ({target_env.address}) has local_infile=OFF: the copy "
                "loads rows with LOAD DATA LOCAL; nothing was changed",
                hint="SET GLOBAL local_infile = ON (and local_infile=ON under [mysqld] in "
                "my.cnf), then run again")


@contextmanager
def _sessions(config: Config, source_env: DatabaseConfig,
              target_env: DatabaseConfig) -> Iterator[tuple[Session, Session]]:
    src = connect(source_env, config.settings)
    try:
        dst = connect(target_env, config.settings)
        try:
            yield src, dst
        finally:
            dst.close()
    finally:
        src.close()


# ---------------------------------------------------------------- the copy
@dataclass
class _Tools:
    source_binary: Binary
    target_binary: Binary
    source_defaults: ClientDefaults
    target_defaults: ClientDefaults
    source_db: str
    target_db: str
    source_flavor: str = "mariadb"
    source_wire: tuple[str, ...] = ()   # protocol compression options (tools.wire_args)
    target_wire: tuple[str, ...] = ()


class _Run:
    """Shared state of one copy: the chunk queue, per-table counters, failures."""

    def __init__(self, plans: list[TablePlan], progress: Progress,
                 target_env: DatabaseConfig, workers: int, settings: Settings) -> None:
        self.target_env = target_env
        self.settings = settings
        self.kind = ""                      # checksum kind; "" = do not verify
        self.loaders: dict[int, Loader] = {}  # running loads by target connection id
        self.checks: dict[str, TableCheck] = {}
        self.source_sums: dict[tuple[str, int], Sums] = {}  # (table, chunk index) → sums
        self.plans = {p.table: p for p in plans}
        self.results = {p.table: TableResult(p.table, chunks=len(p.chunks)) for p in plans}
        self.remaining = {p.table: len(p.chunks) for p in plans}
        self.started: dict[str, float] = {}
        self.shadows: dict[str, shadow.ShadowPlan] = {}
        self.progress = progress
        self.lock = threading.Lock()
        self.fatal: BaseException | None = None
        self.guard: dict[str, swap.Fingerprint] = {}
        self.holders: dict[str, Holder] = {}  # --lock-target: a READ lock per table
        self.queue: queue.Queue[chunking.Chunk] = queue.Queue()
        order = sorted(plans, key=lambda p: -p.bytes_estimate)  # big tables first
        for plan in order:
            for chunk in striped(plan.chunks, workers):
                self.queue.put(chunk)

    def failed(self, table: str) -> bool:
        return self.results[table].status == "failed"

    def fail(self, table: str, exc: BaseException) -> None:
        with self.lock:
            result = self.results[table]
            if result.error is None:
                result.error = str(exc)
                log.error("table %s failed: %s", table, exc)
            if result.status != "mismatch":
                result.status = "failed"
        self.progress.table_done(table, "failed")


def striped(items: list[chunking.Chunk], workers: int) -> list[chunking.Chunk]:
    """Chunks in an order where concurrent workers load far-apart key ranges (pure).

    Cut into `workers` contiguous stripes and interleaved: each worker then appends at
    the end of its own stripe instead of splitting pages next to another worker's rows.
    """
    if workers <= 1 or len(items) <= workers:
        return list(items)
    size = -(-len(items) // workers)
    stripes = [items[i:i + size] for i in range(0, len(items), size)]
    return [s[i] for i in range(size) for s in stripes if i < len(s)]


def copy_tables(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
                tables: Sequence[str], *, threads: int | None = None,
                progress: Progress | None = None, plans: list[TablePlan] | None = None,
                verify: bool = False, metrics: bool = True,
                lock_target: bool = False) -> CopyReport:
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
        src, dst = stack.enter_context(_sessions(config, source_env, target_env))
        plans = plans or plan_tables(src, dst, tables, threads)
        tools = _tools(stack, src, dst)  # refuses an impossible `compress: on` before writes
        run = _Run(plans, progress, target_env, threads, config.settings)
        if lock_target:
            run.holders = stack.enter_context(hold_writes(config, target_env, plans))
        run.guard = {fp.table: fp for fp in swap.fingerprints(dst, run.plans)}
        run.kind = session_kind(src, dst) if verify else ""
        for plan in plans:
            progress.add_table(plan.table, plan.rows_estimate, plan.bytes_estimate)
        try:
            for plan in plans:
                run.shadows[plan.table] = shadow.create_shadow(dst, plan.table)
            _copy_all(tools, src, run, min(threads, len(run.queue.queue) or 1))
            _swap_groups(config, target_env, dst, run)
        finally:
            leftover = [s for t, s in run.shadows.items() if run.results[t].status != "swapped"]
            with contextlib.suppress(DumpLoadError, pymysql.err.Error):
                shadow.drop_shadows(_alive(dst, config, target_env), leftover)
    report = CopyReport(list(run.results.values()), time.monotonic() - started, threads)
    if verify:
        report.verify = VerifyReport([run.checks.get(t) or TableCheck(t, error=r.error)
                                      for t, r in run.results.items()])
    if metrics:
        _record(config, source_env, target_env, report)
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


def _alive(session: Session, config: Config, env: DatabaseConfig) -> Session:
    try:
        session.conn.ping(reconnect=False)
        return session
    except pymysql.err.Error:
        return connect(env, config.settings)


def _tools(stack: ExitStack, src: Session, dst: Session) -> _Tools:
    sb = find_binary("client", src.server.flavor)
    tb = find_binary("client", dst.server.flavor)
    wires = wire_args(src.env, sb, src.server), wire_args(dst.env, tb, dst.server)
    sd = stack.enter_context(defaults_file(src.env, sb))
    td = stack.enter_context(defaults_file(dst.env, tb))
    return _Tools(sb, tb, sd, td, src.env.database, dst.env.database, src.server.flavor,
                  *wires)


Feed = Callable[[Callable[[bytes], None]], int]   # streams one chunk's bytes into a sink
Load = tuple[Feed, encode.LoadSpec]               # one stream and the LOAD DATA that reads it


def _copy_all(tools: _Tools, src: Session, run: _Run, workers: int) -> None:
    readers = open_snapshot(src, tools.source_binary, tools.source_defaults, list(run.plans),
                            workers, raw=False, wire=tools.source_wire)
    try:
        run_workers(run, [_copy_job(tools, run, r) for r in readers])
    finally:
        for r in readers:
            r.close()
    if isinstance(run.fatal, SourceGone):
        for table, result in run.results.items():
            if result.status not in ("loaded", "failed"):
                run.fail(table, run.fatal)


def _copy_job(tools: _Tools, run: _Run, reader: SourceReader) -> Job:
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
        loads: list[Load] = [(lambda sink, sql=p.select: reader.stream(sql, sink), p.spec)
                             for p in parts]
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


def run_workers(run: _Run, jobs: list[Job]) -> None:
    """One thread per job function; each takes chunks from the queue until it is empty."""
    threads = [threading.Thread(target=_worker, args=(run, job), name=f"dumpload-data-{i}",
                                daemon=True) for i, job in enumerate(jobs)]
    done = threading.Event()
    watchdog = threading.Thread(target=_watch_loads, args=(run, done), daemon=True,
                                name="dumpload-watchdog")
    watchdog.start()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done.set()
    watchdog.join()


WATCH_SECONDS = 2.0


def _watch_loads(run: _Run, done: threading.Event) -> None:
    """Kill a load client whose server connection is gone (killed, server restarted): the
    chunk then fails at once and is retried, instead of hanging on a dead socket."""
    session: Session | None = None
    suspects: set[int] = set()
    while not done.wait(WATCH_SECONDS):
        with run.lock:
            ids = list(run.loaders)
        if not ids:
            continue
        try:
            session = session or connect(run.target_env, run.settings)
            alive = {r[0] for r in session.query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE ID IN ("
                + ", ".join(str(i) for i in ids) + ")")}
        except (DumpLoadError, pymysql.err.MySQLError):
            session = None
            continue
        gone = {i for i in ids if i not in alive}
        for conn_id in gone & suspects:  # missing twice in a row: not a load just ending
            with run.lock:
                loader = run.loaders.get(conn_id)
            if loader is not None:
                log.warning("%s: its server connection %d is gone; stopping the client",
                            loader.what, conn_id)
                loader.proc.kill()
        suspects = gone
    if session is not None:
        session.close()


def open_snapshot(src: Session, binary: Binary, defaults: ClientDefaults, tables: list[str],
                  workers: int, *, raw: bool = True,
                  wire: Sequence[str] = ()) -> list[SourceReader]:
    """All workers' snapshots opened while writes to the tables are held by a READ lock.

    `raw`: readers for the SERVER text format (see `encode`), else for CLIENT."""
    locked = _lock_source(src, tables)
    readers: list[SourceReader] = []
    try:
        for i in range(workers):
            reader = SourceReader(binary, defaults, src.env.database,
                                  f"source reader {i + 1} ({src.env.name})", raw=raw,
                                  wire=wire)
            readers.append(reader)
            reader.begin()
    except BaseException:
        for r in readers:
            r.close()
        raise
    finally:
        if locked:
            src.execute("UNLOCK TABLES")
    return readers


def _lock_source(src: Session, tables: list[str]) -> bool:
    try:
        src.execute("LOCK TABLES " + ", ".join(f"{quote(t)} READ" for t in tables))
        return True
    except pymysql.err.MySQLError as exc:
        log.warning("could not lock the source tables for one snapshot (%s); each worker "
                    "reads its own snapshot, taken at nearly the same moment", exc)
        return False


Job = Callable[[chunking.Chunk], Sums | None]   # copies a chunk; its source sums if known


def _worker(run: _Run, job: Job) -> None:
    while run.fatal is None:
        try:
            chunk = run.queue.get_nowait()
        except queue.Empty:
            return
        if run.failed(chunk.table):
            continue
        try:
            sums = job(chunk)
            _chunk_done(run, chunk, sums)
        except SourceGone as exc:
            run.fatal = exc
            run.fail(chunk.table, exc)
        except DumpLoadError as exc:
            run.fail(chunk.table, exc)
        except pymysql.err.MySQLError as exc:
            run.fail(chunk.table, DataError(f"{chunk.table}: {exc}"))
        except BaseException as exc:  # a bug: stop everything, report it
            run.fatal = exc
            run.fail(chunk.table, exc)


def load_chunk(settings: Settings, tools: _Tools, run: _Run, chunk: chunking.Chunk,
               loads: Sequence[Load]) -> int:
    """Load one chunk into its shadow (one LOAD DATA per stream); returns the rows loaded.

    A failed load clears the chunk's range in the shadow and the whole chunk is retried.
    """
    with run.lock:
        run.started.setdefault(chunk.table, time.monotonic())
    attempts = max(1, settings.retry_attempts)
    for attempt in range(1, attempts + 1):
        try:
            counts = [_stream_chunk(tools, run, chunk, feed,
                                    encode.load_sql(run.shadows[chunk.table].shadow, spec))
                      for feed, spec in loads]
        except LoadFailed as exc:
            if not exc.retryable or attempt == attempts:
                raise
            log.warning("%s chunk %d (%s): %s; retrying (attempt %d of %d)", chunk.table,
                        chunk.index, chunk.describe(), exc, attempt + 1, attempts)
            _clear_chunk(settings, run, chunk)
            with run.lock:
                run.results[chunk.table].retries += 1
            time.sleep(min(2 ** attempt * 0.25, 4))
            continue
        rows, size = sum(c[0] for c in counts), sum(c[1] for c in counts)
        with run.lock:
            result = run.results[chunk.table]
            result.rows += rows
            result.bytes += size
            result.target_wire_bytes += sum(c[2] for c in counts)
        return rows
    raise AssertionError("unreachable: the last attempt returns or raises")


def _stream_chunk(tools: _Tools, run: _Run, chunk: chunking.Chunk, feed: Feed,
                  load: str) -> tuple[int, int, int]:
    """(rows, bytes, bytes on the wire) of one stream loaded by one target client."""
    loader = Loader(tools.target_binary, tools.target_defaults, tools.target_db, load,
                    f"load of {chunk.table} chunk {chunk.index}", wire=tools.target_wire)
    with run.lock:
        run.loaders[loader.connection_id] = loader
    counted = [0]

    def sink(block: bytes) -> None:
        loader.write(block)
        rows = block.count(b"\n")
        counted[0] += rows
        run.progress.advance(chunk.table, rows, len(block))

    try:
        size = feed(sink)
        loaded = loader.finish()
    except BaseException:
        loader.abort()
        raise
    finally:
        with run.lock:
            run.loaders.pop(loader.connection_id, None)
        loader.close()
    if loaded != counted[0]:
        raise LoadFailed(f"{chunk.table} chunk {chunk.index}: {counted[0]} rows sent but "
                         f"{loaded} loaded", retryable=False)
    return counted[0], size, loader.wire_bytes


def _clear_chunk(settings: Settings, run: _Run, chunk: chunking.Chunk) -> None:
    """Remove whatever a failed attempt may have committed for this range."""
    table = run.shadows[chunk.table].shadow
    with contextlib.closing(connect(run.target_env, settings)) as s:
        where = f" WHERE {chunk.where}" if chunk.where else ""
        s.execute(f"DELETE FROM {quote(table)}{where}")


def _chunk_done(run: _Run, chunk: chunking.Chunk, sums: Sums | None) -> None:
    """Keep the chunk's source sums; after a table's last chunk, build its indexes and,
    meanwhile, verify the shadow against those sums."""
    with run.lock:
        if sums is not None:
            run.source_sums[(chunk.table, chunk.index)] = sums
        run.remaining[chunk.table] -= 1
        last = run.remaining[chunk.table] == 0
    if not last or run.failed(chunk.table):
        return
    table = chunk.table
    result = run.results[table]
    result.phases["extract_load"] = round(time.monotonic() - run.started[table], 3)
    index_error: list[BaseException] = []
    builder = threading.Thread(target=_build_indexes, args=(run, table, index_error),
                               name=f"dumpload-index-{table}", daemon=True)
    builder.start()
    if run.kind:
        started = time.monotonic()
        try:
            run.checks[table] = _verify_shadow(run, table)
        finally:
            result.phases["verify"] = round(time.monotonic() - started, 3)
    builder.join()
    if index_error:
        raise index_error[0]
    check = run.checks.get(table)
    if check is not None and not check.ok:
        result.status = "mismatch"
        raise VerifyError(f"{table}: the loaded rows differ from the source "
                          f"({check.source_rows} rows {check.source_checksum} vs "
                          f"{check.target_rows} rows {check.target_checksum}); not swapped, "
                          "the target keeps its old data",
                          hint="was the target table written to during the copy? run again")
    result.status = "loaded"
    run.progress.table_done(table, "loaded")


def _build_indexes(run: _Run, table: str, errors: list[BaseException]) -> None:
    started = time.monotonic()
    try:
        with contextlib.closing(connect(run.target_env, run.settings)) as s:
            shadow.build_indexes(s, run.shadows[table])
    except BaseException as exc:  # reported by the waiting worker
        errors.append(exc if isinstance(exc, DumpLoadError) else
                      DataError(f"{table}: building the indexes failed: {exc}"))
    run.results[table].phases["index_build"] = round(time.monotonic() - started, 3)


def _verify_shadow(run: _Run, table: str) -> TableCheck:
    """Per-range sums of the shadow against the source's, taken before each chunk's load."""
    info = run.plans[table].info
    assert info is not None
    ranges = run.plans[table].chunks
    try:
        source = [run.source_sums[(table, c.index)] for c in ranges]
    except KeyError:
        raise DataError(f"{table}: the source checksum of a chunk is missing") from None
    # Last loaded first: those pages are still in the target's buffer pool, while the
    # index build, which scans from the lowest key, reads back the older ones. Scanning
    # the same way would make both compete for the same evicted pages (measured on a
    # table larger than the pool: the index build took 4.3-5.1 s instead of 3.7-3.9 s).
    with contextlib.closing(connect(run.target_env, run.settings)) as s:
        target = [table_checksum(s, info, c.where, run.kind, run.shadows[table].shadow)
                  for c in reversed(ranges)][::-1]
    check = TableCheck(table, source_rows=sum(x[0] for x in source),
                       target_rows=sum(x[0] for x in target),
                       source_checksum=combine(source), target_checksum=combine(target))
    check.mismatches = [RangeMismatch(c.describe(), a, b)
                        for c, a, b in zip(ranges, source, target, strict=True) if a != b]
    return check


# ---------------------------------------------------------------- swap
def _swap_groups(config: Config, target_env: DatabaseConfig, dst: Session, run: _Run) -> None:
    dst = _alive(dst, config, target_env)
    names = list(run.plans)
    fks = shadow.related_fks(dst, names)
    for group in _groups(dst, names, fks):
        bad = [t for t in group if run.results[t].status != "loaded"]
        if bad:
            for t in group:
                if t not in bad:
                    run.fail(t, DataError(f"not swapped: linked by a foreign key to failed "
                                          f"table {bad[0]!r}"))
            continue
        started = time.monotonic()
        plans = {t: run.shadows[t] for t in group}
        group_fks = [fk for fk in fks if fk.table in group or fk.ref_table in group]
        try:
            shadow.check_foreign_keys(dst, plans, dst.env.database, group_fks)
            swap.swap_group(target_env, run.settings,
                            [swap.Replacement(t, plans[t].shadow) for t in group], session=dst,
                            guard=[run.guard[t] for t in group if t in run.guard],
                            on_locking=_release_holder(run, group),
                            ignore=[h.connection_id for h in run.holders.values()])
        except (DumpLoadError, pymysql.err.MySQLError) as exc:
            error = exc if isinstance(exc, DumpLoadError) else DataError(str(exc))
            for t in group:
                run.fail(t, error)
            continue
        for t in group:
            run.results[t].status = "swapped"
            run.results[t].phases["swap"] = round(time.monotonic() - started, 3)
            run.progress.table_done(t, "done")


def _groups(dst: Session, names: list[str], fks: list[shadow.ForeignKey]) -> list[list[str]]:
    edges = [(fk.table, fk.ref_table) for fk in fks if fk.ref_schema == dst.env.database]
    return fk_groups(names, edges)


@contextmanager
def hold_writes(config: Config, target_env: DatabaseConfig,
                plans: list[TablePlan]) -> Iterator[dict[str, Holder]]:
    """`--lock-target`: one session per table holding `LOCK TABLES t READ` from now until
    its swap, so nobody writes rows the copy would overwrite (readers are not blocked).
    Each wait for the lock is bounded like the swap's. Yields {table: holder}."""
    holders: dict[str, Holder] = {}
    try:
        for plan in plans:
            holder = Holder(connect(target_env, config.settings), plan.table, "READ")
            holders[plan.table] = holder
            lock_tables(holder.session, [f"{quote(plan.table)} READ"], target_env.database,
                        [plan.table], config.settings,
                        ignore={h.connection_id for h in holders.values()})
            holder.held = True
        log.info("writes to %s blocked until their swap (--lock-target)", ", ".join(holders))
        yield holders
    finally:
        for holder in holders.values():
            holder.close()


def _release_holder(run: _Run, group: list[str]) -> swap.OnLocking | None:
    """--lock-target: hand the group's tables from our READ locks to the swap's lock
    without letting a queued writer in between (`mdl.handoff`)."""
    gates = [run.holders[t] for t in group if t in run.holders]
    if not gates:
        return None

    def release(watcher: Session, connection_id: int) -> None:
        wait_until_waiting(watcher, connection_id)
        handoff(watcher, gates, connection_id)
    return release


def _record(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
            report: CopyReport) -> None:
    from dumpload.logs import record_metrics
    for result in report.tables:
        record_metrics(config.settings.log_dir, {
            "step": "data", "source": source_env.name, "target": target_env.name,
            "table": result.table, "rows": result.rows, "bytes": result.bytes,
            "source_wire_bytes": result.source_wire_bytes,
            "target_wire_bytes": result.target_wire_bytes,
            "compression_ratio": result.compression_ratio, "chunks": result.chunks,
            "threads": report.threads, "status": result.status,
            "seconds": result.phases})
