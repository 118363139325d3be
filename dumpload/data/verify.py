"""Compare tables between two servers: row counts and strong checksums per key range.

Each side computes, server-side, `COUNT(*)` and the sum of the first 64 bits of every
row's MD5 (see `encode.checksum_sql`) over the same key ranges; ranges are computed once
from the source. A sum (unlike XOR) is not fooled by duplicated rows; every column is
length-prefixed with NULL marked apart, so NULL, '' and 'NULL' all differ. Read-only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from dumpload.config import Config, DatabaseConfig
from dumpload.data import chunks as chunking
from dumpload.data import encode
from dumpload.data.tables import TableInfo, inspect_tables
from dumpload.db import Session, connect, usable_threads

log = logging.getLogger(__name__)

Sums = tuple[int, int]   # (rows, sum of the rows' 64-bit hashes)


@dataclass
class RangeMismatch:
    range: str
    source: Sums
    target: Sums

    def to_dict(self) -> dict[str, Any]:
        return {"range": self.range, "source_rows": self.source[0],
                "target_rows": self.target[0]}


@dataclass
class TableCheck:
    table: str
    source_rows: int = 0
    target_rows: int = 0
    source_checksum: str = ""
    target_checksum: str = ""
    mismatches: list[RangeMismatch] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return (self.error is None and not self.mismatches
                and self.source_checksum == self.target_checksum)

    def to_dict(self) -> dict[str, Any]:
        return {"table": self.table, "ok": self.ok, "source_rows": self.source_rows,
                "target_rows": self.target_rows, "source_checksum": self.source_checksum,
                "target_checksum": self.target_checksum, "error": self.error,
                "mismatched_ranges": [m.to_dict() for m in self.mismatches],
                "seconds": round(self.seconds, 3)}


@dataclass
class VerifyReport:
    tables: list[TableCheck]

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tables)

    @property
    def failed(self) -> list[TableCheck]:
        return [t for t in self.tables if not t.ok]

    def table_ok(self) -> dict[str, bool]:
        return {t.table: t.ok for t in self.tables}

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "tables": [t.to_dict() for t in self.tables]}


def combine(parts: Sequence[Sums]) -> str:
    """One printable checksum out of per-range sums (order-independent)."""
    rows = sum(p[0] for p in parts)
    total = sum(p[1] for p in parts) % (1 << 64)
    return f"{rows}:{total:016x}"


def session_kind(*sessions: Session) -> str:
    """The checksum every given server can compute ("crc" if all can, else "md5")."""
    kinds = {encode.checksum_kind(s.server.flavor, s.server.version) for s in sessions}
    return "crc" if kinds == {"crc"} else "md5"


def table_checksum(session: Session, info: TableInfo, where: str = "", kind: str = "md5",
                   table: str | None = None) -> Sums:
    """(rows, sum of row hashes) of a table or key range (`table`: another name, e.g. a
    shadow with the same columns)."""
    sql = encode.checksum_sql(table or info.name, info.columns, where, kind)
    row = session.query(sql)[0]
    return int(row[0]), int(row[1])


class _SessionPool:
    """One session per thread and side, closed at the end."""

    def __init__(self, config: Config, envs: dict[str, DatabaseConfig]) -> None:
        self.config, self.envs = config, envs
        self.local = threading.local()
        self.all: list[Session] = []
        self.lock = threading.Lock()

    def get(self, side: str) -> Session:
        session = getattr(self.local, side, None)
        if session is None:
            session = connect(self.envs[side], self.config.settings)
            setattr(self.local, side, session)
            with self.lock:
                self.all.append(session)
        return session

    def close(self) -> None:
        for s in self.all:
            s.close()


def verify_tables(config: Config, source_env: DatabaseConfig, target_env: DatabaseConfig,
                  tables: Sequence[str], *, threads: int | None = None) -> VerifyReport:
    """Counts + checksums of `tables` on both sides, per key range, in parallel. Read-only."""
    threads = max(1, threads or config.settings.threads)
    pool = _SessionPool(config, {"source": source_env, "target": target_env})
    try:
        src = pool.get("source")
        dst = pool.get("target")
        kind = session_kind(src, dst)
        threads = usable_threads(threads, src, dst, per_worker=2)
        names = list(tables)
        infos, targets = inspect_tables(src, names), inspect_tables(dst, names)
        checks = [_prepare(src, infos[t], targets[t], threads) for t in names]
        with ThreadPoolExecutor(max_workers=threads * 2) as executor:
            work = [(check, info, chunk) for check, info, ranges in checks if info
                    for chunk in ranges]
            futures = [executor.submit(_compare_range, pool, info, chunk, kind)
                       for _, info, chunk in work]
            results: dict[str, list[tuple[chunking.Chunk, Sums, Sums]]] = {}
            for (check, _, chunk), future in zip(work, futures, strict=True):
                s, t, seconds = future.result()
                check.seconds += seconds
                results.setdefault(check.table, []).append((chunk, s, t))
        return VerifyReport([_conclude(check, results.get(check.table, []))
                             for check, _, _ in checks])
    finally:
        pool.close()


def _prepare(src: Session, info: TableInfo, target: TableInfo,
             threads: int) -> tuple[TableCheck, TableInfo | None, list[chunking.Chunk]]:
    check = TableCheck(info.name)
    if not info.columns or not target.columns:
        side = "source" if not info.columns else "target"
        check.error = f"table does not exist on the {side}"
        return check, None, []
    if [c.signature for c in info.columns] != [c.signature for c in target.columns]:
        check.error = "columns differ between source and target (run `dumpload structure`)"
        return check, None, []
    return check, info, chunking.plan_chunks(src, info, threads)


def _compare_range(pool: _SessionPool, info: TableInfo, chunk: chunking.Chunk,
                   kind: str) -> tuple[Sums, Sums, float]:
    started = time.monotonic()
    return (table_checksum(pool.get("source"), info, chunk.where, kind),
            table_checksum(pool.get("target"), info, chunk.where, kind),
            time.monotonic() - started)


def _conclude(check: TableCheck,
              parts: list[tuple[chunking.Chunk, Sums, Sums]]) -> TableCheck:
    if check.error:
        return check
    check.source_rows = sum(s[0] for _, s, _ in parts)
    check.target_rows = sum(t[0] for _, _, t in parts)
    check.source_checksum = combine([s for _, s, _ in parts])
    check.target_checksum = combine([t for _, _, t in parts])
    check.mismatches = [RangeMismatch(c.describe(), s, t) for c, s, t in parts if s != t]
    if check.mismatches:
        log.warning("verify %s: %d key range(s) differ: %s", check.table, len(check.mismatches),
                    "; ".join(m.range for m in check.mismatches[:5]))
    return check
