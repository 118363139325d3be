"""The data engine: workers, retries, index build, verification and the group swap, fed
by row sources.

A row source is a `Job` per worker: given a chunk (a key range of one table), it streams
the chunk's rows into the chunk's shadow table through `load_chunk` and returns the
source's (count, checksum) of that chunk when it knows them. The server copy
(`copy._copy_job`: a source reader in one snapshot) and the export import
(`export._import_job`: a frame of a `.tsv.zst` file) are the two row sources.

What the engine guarantees for the shadow tables of a `Run`: a failed load is retried from
the same source after clearing the chunk's range; after a table's last chunk its deferred
indexes are built while its per-range checksums are compared with the source's; a table
that differs is never swapped (status "mismatch"); tables linked by foreign keys are
checked with anti-joins and swapped together through `swap.swap_group` (the only code that
renames a live table). A failed table fails its group; the old data stays.

May touch: `_dl_shadow_*` tables on the target, and the live tables only through the swap.
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import pymysql

from dumpload import swap
from dumpload.catalog import fk_groups
from dumpload.config import Config, DatabaseConfig, Settings
from dumpload.data import chunks as chunking
from dumpload.data import encode, shadow
from dumpload.data.plan import SHADOW, TablePlan
from dumpload.data.stream import Loader, LoadFailed, SourceGone
from dumpload.data.tables import schema_fks
from dumpload.data.verify import (
    RangeMismatch,
    Sums,
    TableCheck,
    VerifyReport,
    combine,
    table_checksum,
)
from dumpload.db import Session, connect
from dumpload.errors import DataError, DumpLoadError, VerifyError
from dumpload.mdl import Holder, handoff, lock_tables, wait_until_waiting
from dumpload.progress import Progress
from dumpload.sqltext import quote
from dumpload.tools import Binary, ClientDefaults

log = logging.getLogger(__name__)


@dataclass
class TableResult:
    table: str
    rows: int = 0
    bytes: int = 0
    chunks: int = 0
    retries: int = 0
    phases: dict[str, float] = field(default_factory=dict)
    status: str = "pending"   # pending, loaded, swapped, failed, mismatch
    strategy: str = ""        # what was done: in-place, delta, shadow, shadow (delta too big)
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


# ---------------------------------------------------------------- the copy
@dataclass
class Tools:
    source_binary: Binary
    target_binary: Binary
    source_defaults: ClientDefaults
    target_defaults: ClientDefaults
    source_db: str
    target_db: str
    source_flavor: str = "mariadb"
    source_wire: tuple[str, ...] = ()   # protocol compression options (tools.wire_args)
    target_wire: tuple[str, ...] = ()


class Run:
    """Shared state of one copy: the chunk queue, per-table counters, failures."""

    def __init__(self, plans: list[TablePlan], progress: Progress,
                 target_env: DatabaseConfig, workers: int, settings: Settings) -> None:
        self.target_env = target_env
        self.settings = settings
        self.kind = ""                      # checksum kind; "" = do not verify
        self.delta_kind = "md5"             # checksum kind of delta comparisons
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
        for plan in (p for p in order if p.mode == SHADOW):
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


def alive(session: Session, config: Config, env: DatabaseConfig) -> Session:
    try:
        session.conn.ping(reconnect=False)
        return session
    except pymysql.err.Error:
        return connect(env, config.settings)


Feed = Callable[[Callable[[bytes], None]], int]   # streams one chunk's bytes into a sink


Load = tuple[Feed, encode.LoadSpec]               # one stream and the LOAD DATA that reads it


class RowSource(Protocol):
    """What feeds the engine, one per worker: load `chunk`'s rows into its shadow table
    (through `load_chunk`) and return the source's (count, checksum) of them when known.
    Implemented by the server copy (`copy._copy_job`) and the import (`export._import_job`).
    """

    def __call__(self, chunk: chunking.Chunk) -> Sums | None: ...


Job = RowSource


def run_workers(run: Run, jobs: list[Job]) -> None:
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


def _watch_loads(run: Run, done: threading.Event) -> None:
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


def _worker(run: Run, job: Job) -> None:
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


def load_chunk(settings: Settings, tools: Tools, run: Run, chunk: chunking.Chunk,
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


def _stream_chunk(tools: Tools, run: Run, chunk: chunking.Chunk, feed: Feed,
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


def _clear_chunk(settings: Settings, run: Run, chunk: chunking.Chunk) -> None:
    """Remove whatever a failed attempt may have committed for this range."""
    table = run.shadows[chunk.table].shadow
    with contextlib.closing(connect(run.target_env, settings)) as s:
        where = f" WHERE {chunk.where}" if chunk.where else ""
        s.execute(f"DELETE FROM {quote(table)}{where}")


def _chunk_done(run: Run, chunk: chunking.Chunk, sums: Sums | None) -> None:
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


def _build_indexes(run: Run, table: str, errors: list[BaseException]) -> None:
    started = time.monotonic()
    try:
        with contextlib.closing(connect(run.target_env, run.settings)) as s:
            shadow.build_indexes(s, run.shadows[table])
    except BaseException as exc:  # reported by the waiting worker
        errors.append(exc if isinstance(exc, DumpLoadError) else
                      DataError(f"{table}: building the indexes failed: {exc}"))
    run.results[table].phases["index_build"] = round(time.monotonic() - started, 3)


def _verify_shadow(run: Run, table: str) -> TableCheck:
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
def swap_groups(config: Config, target_env: DatabaseConfig, dst: Session, run: Run) -> None:
    dst = alive(dst, config, target_env)
    names = [t for t, p in run.plans.items() if p.mode == SHADOW]
    if not names:
        return
    fks = schema_fks(dst)
    for group in groups(dst, names, fks):
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
            run.results[t].strategy = run.results[t].strategy or SHADOW
            run.results[t].phases["swap"] = round(time.monotonic() - started, 3)
            run.progress.table_done(t, "done")


def groups(dst: Session, names: list[str], fks: list[shadow.ForeignKey]) -> list[list[str]]:
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


def _release_holder(run: Run, group: list[str]) -> swap.OnLocking | None:
    """--lock-target: hand the group's tables from our READ locks to the swap's lock
    without letting a queued writer in between (`mdl.handoff`)."""
    gates = [run.holders[t] for t in group if t in run.holders]
    if not gates:
        return None

    def release(watcher: Session, connection_id: int) -> None:
        wait_until_waiting(watcher, connection_id)
        handoff(watcher, gates, connection_id)
    return release


def record(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
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
