"""`export` a database's tables to a folder and `import` such a folder into a database.

An export folder:
```
manifest.json        format, tool version, server, database, per table: file, rows, bytes,
                     sha256, checksum (as `verify` computes it), columns, LOAD DATA spec,
                     frames (offset, length, rows, key range) — one zstd frame per chunk
schema.sql           CREATE TABLE of each exported table (SHOW CREATE TABLE), then the
                     views, triggers, procedures, functions and events (DELIMITER ;;),
                     which manifest.json also holds under "objects" (see data/objects.py)
<table>.tsv.zst      rows in LOAD DATA's escaped text form; `zstd -dc` gives plain TSV
```
Export reads every chunk inside one consistent snapshot (as `copy_tables` does) and
computes each chunk's checksum inside the same snapshot, so the manifest matches the
files exactly. Import checks the files against the manifest first, creates missing tables
from schema.sql, loads frames in parallel into shadow tables, swaps them in atomically and
compares every loaded shadow with the manifest's per-frame counts and checksums before
its swap; after the swap it creates the views, triggers, routines and events it lacks.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import queue
import re
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import zstandard

from dumpload import __version__, swap
from dumpload.config import Config, DatabaseConfig
from dumpload.data import chunks as chunking
from dumpload.data import encode, engine, shadow
from dumpload.data.objects import export_objects, import_objects, schema_sql
from dumpload.data.plan import TablePlan
from dumpload.data.stream import SourceReader, open_snapshot
from dumpload.data.tables import TableInfo, base_tables, inspect_table, show_create
from dumpload.data.verify import TableCheck, VerifyReport, combine
from dumpload.db import ServerInfo, connect, usable_threads
from dumpload.errors import EXIT_VERIFY, DataError, DumpLoadError
from dumpload.private import make_dirs, open_private, write_text
from dumpload.progress import NullProgress, Progress
from dumpload.shapes import shape_error
from dumpload.sqltext import quote
from dumpload.tools import defaults_file, find_binary, wire_args

log = logging.getLogger(__name__)

FORMAT = "dumpload-export/1"
KIND = "md5"  # an export may be imported into any server: the checksum every server has
MANIFEST = "manifest.json"
SCHEMA = "schema.sql"
PARTS = ".parts"


def file_name(table: str) -> str:
    """A safe file name for a table's data; unusual names get a hash suffix (pure)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", table).lstrip(".")
    if safe != table:
        safe += "_" + hashlib.sha1(table.encode()).hexdigest()[:8]
    return safe + ".tsv.zst"


# ---------------------------------------------------------------- export
def export_tables(config: Config, env: DatabaseConfig, out_dir: Path, tables: Sequence[str], *,
                  threads: int | None = None, progress: Progress | None = None,
                  objects: tuple[Sequence[str], Sequence[str]] = (("*",), ())
                  ) -> dict[str, Any]:
    """Write `tables` of `env` to `out_dir` (new or empty); returns the manifest.

    `objects`: (include, exclude) globs choosing the views, procedures, functions and
    events that go with them (the triggers of `tables` always do)."""
    threads = max(1, threads or config.settings.threads)
    progress = progress or NullProgress()
    _prepare_dir(out_dir)
    with ExitStack() as stack:
        src = stack.enter_context(contextlib.closing(connect(env, config.settings)))
        binary = find_binary("client", src.server.flavor)
        wire = wire_args(env, binary, src.server)
        threads = usable_threads(threads, src)
        infos = {t: inspect_table(src, t) for t in tables}
        missing = [t for t, i in infos.items() if not i.columns]
        if missing:
            raise DataError(f"table(s) not found on {env.name}: {', '.join(missing)}")
        plans = {t: chunking.plan_chunks(src, i, threads) for t, i in infos.items()}
        extra = export_objects(src, list(tables), *objects)
        _write_schema(out_dir, src, list(tables), extra)
        defaults = stack.enter_context(defaults_file(env, binary))
        for t, info in infos.items():
            progress.add_table(t, info.rows_estimate, info.data_bytes)
        work: queue.Queue[chunking.Chunk] = queue.Queue()
        for t in sorted(tables, key=lambda t: -infos[t].data_bytes):
            for chunk in plans[t]:
                work.put(chunk)
        workers = min(threads, work.qsize() or 1)
        readers = open_snapshot(src, binary, defaults, list(tables), workers,
                                        wire=wire)
        results: dict[tuple[str, int], dict[str, Any]] = {}
        try:
            _run_export(readers, work, infos, out_dir, config, progress, results, KIND,
                        src.server.flavor)
        finally:
            for r in readers:
                r.close()
        manifest = _assemble(out_dir, env, src.server, infos, plans, results, extra)
    for t in tables:
        progress.table_done(t, "exported")
    return manifest


def _prepare_dir(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise DataError(f"export folder {out_dir} is a file",
                        hint="choose a new folder (an export never overwrites files)")
    if out_dir.exists() and any(out_dir.iterdir()):
        raise DataError(f"export folder {out_dir} is not empty",
                        hint="choose a new folder (an export never overwrites files)")
    make_dirs(out_dir / PARTS)  # each folder it creates 0700; an existing --out keeps its mode


def _write_schema(out_dir: Path, src: Any, tables: list[str],
                  objects: list[dict[str, Any]]) -> None:
    lines = ["-- dumpload export schema", "SET foreign_key_checks = 0;", ""]
    for t in tables:
        lines += [show_create(src, t) + ";", ""]
    lines += schema_sql(objects)
    write_text(out_dir / SCHEMA, "\n".join(lines))


def _run_export(readers: list[SourceReader], work: queue.Queue[chunking.Chunk],
                infos: dict[str, TableInfo], out_dir: Path, config: Config, progress: Progress,
                results: dict[tuple[str, int], dict[str, Any]], kind: str,
                flavor: str) -> None:
    errors: list[BaseException] = []

    def worker(reader: SourceReader) -> None:
        while not errors:
            try:
                chunk = work.get_nowait()
            except queue.Empty:
                return
            try:
                results[(chunk.table, chunk.index)] = _export_chunk(
                    reader, chunk, infos[chunk.table], out_dir, config, progress, kind, flavor)
            except BaseException as exc:
                errors.append(exc)

    threads = [threading.Thread(target=worker, args=(r,), daemon=True) for r in readers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        exc = errors[0]
        if isinstance(exc, DumpLoadError):
            raise exc
        raise DataError(f"export failed: {exc}") from exc


def _part_path(out_dir: Path, chunk: chunking.Chunk) -> Path:
    return out_dir / PARTS / f"{file_name(chunk.table)}.{chunk.index:05d}"


def _export_chunk(reader: SourceReader, chunk: chunking.Chunk, info: TableInfo, out_dir: Path,
                  config: Config, progress: Progress, kind: str,
                  flavor: str) -> dict[str, Any]:
    select = encode.select_sql(info.name, info.copied_columns, chunk.where, flavor)
    counts = {"rows": 0}
    compressor = zstandard.ZstdCompressor(level=config.settings.compression_level)
    with open_private(_part_path(out_dir, chunk), "wb") as fh, \
            compressor.stream_writer(fh, closefd=False) as writer:
        def sink(block: bytes) -> None:
            writer.write(block)
            rows = block.count(b"\n")
            counts["rows"] += rows
            progress.advance(chunk.table, rows, len(block))
        size = reader.stream(select, sink)
    sums = bytearray()
    reader.stream(encode.checksum_sql(info.name, info.columns, chunk.where, kind), sums.extend)
    n, total = (int(x) for x in sums.decode().split("\t"))
    if n != counts["rows"]:
        raise DataError(f"export of {info.name}: {counts['rows']} rows written but the "
                        f"snapshot holds {n} in {chunk.describe()}")
    return {"rows": n, "bytes": size, "sums": [n, total]}


def _assemble(out_dir: Path, env: DatabaseConfig, server: ServerInfo,
              infos: dict[str, TableInfo],
              plans: dict[str, list[chunking.Chunk]],
              results: dict[tuple[str, int], dict[str, Any]],
              objects: list[dict[str, Any]]) -> dict[str, Any]:
    entries = []
    for table, info in infos.items():
        target = out_dir / file_name(table)
        frames, offset, digest = [], 0, hashlib.sha256()
        with open_private(target, "wb") as out:
            for chunk in plans[table]:
                part = _part_path(out_dir, chunk)
                data = part.read_bytes()
                out.write(data)
                digest.update(data)
                r = results[(table, chunk.index)]
                frames.append({"offset": offset, "length": len(data), "rows": r["rows"],
                               "sums": r["sums"], "column": chunk.column, "lo": chunk.lo,
                               "hi": chunk.hi})
                offset += len(data)
                part.unlink()
        parts = [tuple(results[(table, c.index)]["sums"]) for c in plans[table]]
        spec = encode.load_spec(info.copied_columns, server.flavor)
        entries.append({
            "name": table, "file": target.name, "rows": sum(p[0] for p in parts),
            "bytes": sum(results[(table, c.index)]["bytes"] for c in plans[table]),
            "compressed_bytes": offset, "sha256": digest.hexdigest(),
            "checksum": combine(parts), "checksum_kind": KIND,
            "columns": [list(c.signature) for c in info.columns],
            "load": spec.to_dict(), "frames": frames})
    shutil.rmtree(out_dir / PARTS, ignore_errors=True)
    manifest = {"format": FORMAT, "tool_version": __version__,
                "created": datetime.now(UTC).isoformat(timespec="seconds"),
                "server": server.version_string, "source_env": env.name, "database": env.database,
                "tables": entries, "objects": objects}
    write_text(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
    return manifest


# ---------------------------------------------------------------- import
# A key-range bound as `dumpload.data.chunks` writes it: an integer or a hex literal,
# maybe converted to the key's charset or to DECIMAL. Bounds are pasted into WHERE
# clauses, so anything else in a manifest is refused rather than run.
_BOUND_RE = re.compile(r"-?\d+|X'[0-9A-Fa-f]*'|CONVERT\(X'[0-9A-Fa-f]*' USING \w+\) "
                       r"COLLATE \w+|CAST\(X'[0-9A-Fa-f]*' AS DECIMAL\(65,30\)\)")

# What import indexes into; other keys are allowed.
MANIFEST_SHAPE = {
    "format": str,
    "tables": [{
        "name": str, "file": str, "rows": int, "bytes": int, "sha256": str,
        "columns": [list], "load": {"targets": str, "sets": str},
        "frames": [{"offset": int, "length": int, "rows": int, "sums": [int],
                    "column": (str, None), "lo": (str, None), "hi": (str, None)}],
    }],
}


def check_export(folder: Path, tables: Sequence[str] = ()) -> dict[str, Any]:
    """Read the manifest and check every (selected) data file's size and sha256.

    `tables`: names or globs to keep (default: all; one that matches nothing is a
    `UsageError`). Raises `DataError` (exit 6) naming the file on any damage.
    """
    from dumpload.config import match_tables

    manifest = read_export_manifest(folder)
    names = [t["name"] for t in manifest["tables"]]
    keep = set(match_tables(names, tables or ["*"], where=f"export {folder}"))
    manifest["tables"] = [t for t in manifest["tables"] if t["name"] in keep]
    for entry in manifest["tables"]:
        _check_file(folder, entry)
    return manifest


def read_export_manifest(folder: Path) -> dict[str, Any]:
    """`folder/manifest.json`, checked against `MANIFEST_SHAPE`; `DataError` naming it."""
    path = folder / MANIFEST
    hint = "point at a folder written by `dumpload export`, or export again"
    try:
        doc: dict[str, Any] = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the export manifest: {exc.strerror or exc}",
                        hint=hint) from None
    except UnicodeDecodeError:
        raise DataError(f"{path}: the export manifest is not UTF-8 text", hint=hint) from None
    except (ValueError, RecursionError) as exc:
        raise DataError(f"{path}: the export manifest is not JSON ({exc})", hint=hint) from None
    if isinstance(doc, dict) and doc.get("format") not in (None, FORMAT):
        raise DataError(f"{path}: unknown export format {doc.get('format')!r}", hint=hint)
    if (error := shape_error(doc, MANIFEST_SHAPE)) is not None:
        raise DataError(f"{path}: the export manifest is damaged: {error}", hint=hint)
    for entry in doc["tables"]:
        # A data file outside the folder ("../x", "/etc/...") is not part of this export.
        if Path(entry["file"]).name != entry["file"] or entry["file"] in ("", ".", ".."):
            raise DataError(f"{path}: table {entry['name']!r} names the data file "
                            f"{entry['file']!r}, which is not a file in {folder}", hint=hint)
        bounds = [b for f in entry["frames"] for b in (f["lo"], f["hi"]) if b is not None]
        if bad := [b for b in bounds if not _BOUND_RE.fullmatch(b)]:
            raise DataError(f"{path}: table {entry['name']!r} has a key-range bound that is "
                            f"not a literal: {bad[0][:60]!r}", hint=hint)
    return doc


def _check_file(folder: Path, entry: dict[str, Any]) -> None:
    path = folder / entry["file"]
    digest = hashlib.sha256()
    try:
        with path.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror}") from None
    if digest.hexdigest() != entry["sha256"]:
        raise DataError(f"{path}: sha256 differs from the manifest: the file is damaged",
                        hint="export again, or copy the folder again")


class _Slice:
    """A file-like view of `length` bytes of `fh` from its current position."""

    def __init__(self, fh: IO[bytes], length: int) -> None:
        self.fh, self.left = fh, length

    def read(self, n: int = -1) -> bytes:
        n = self.left if n < 0 else min(n, self.left)
        data = self.fh.read(n) if n else b""
        self.left -= len(data)
        return data


def _frame_feed(path: Path, frame: dict[str, Any]) -> engine.Feed:
    def feed(sink: Callable[[bytes], None]) -> int:
        total = 0
        with path.open("rb") as fh:
            fh.seek(frame["offset"])
            reader = zstandard.ZstdDecompressor().stream_reader(
                _Slice(fh, frame["length"]),  # type: ignore[arg-type]  # any object with read()
                read_across_frames=True)
            while block := reader.read(1 << 20):
                sink(block)
                total += len(block)
        return total
    return feed


def import_tables(config: Config, env: DatabaseConfig, folder: Path,
                  tables: Sequence[str] = (), *, threads: int | None = None,
                  progress: Progress | None = None) -> engine.CopyReport:
    """Load an export into `env` (shadow + atomic swap per FK group), then compare counts and
    checksums with the manifest (`report.verify`). Raises like `copy_tables`."""
    started = time.monotonic()
    manifest = check_export(folder, tables)
    threads = max(1, threads or config.settings.threads)
    progress = progress or NullProgress()
    entries = {t["name"]: t for t in manifest["tables"]}
    with ExitStack() as stack:
        dst = stack.enter_context(contextlib.closing(connect(env, config.settings)))
        binary = find_binary("client", dst.server.flavor)
        wire = wire_args(env, binary, dst.server)  # before any write: may refuse
        threads = usable_threads(threads, dst)
        _create_missing(dst, folder, list(entries))
        splits = shadow.plan_shadows(dst, list(entries))
        plans = [_import_plan(dst, entry, splits) for entry in entries.values()]
        defaults = stack.enter_context(defaults_file(env, binary))
        tools = engine.Tools(binary, binary, defaults, defaults, env.database, env.database,
                               target_wire=wire)
        run = engine.Run(plans, progress, env, threads, config.settings)
        run.kind = KIND
        run.guard = {fp.table: fp for fp in swap.fingerprints(dst, run.plans)}
        for plan in plans:
            progress.add_table(plan.table, plan.rows_estimate, plan.bytes_estimate)
        try:
            for plan in plans:
                run.shadows[plan.table] = shadow.create_shadow(dst, plan.shadow_definition())
            jobs = [_import_job(config, tools, run, folder, entries) for _ in range(threads)]
            engine.run_workers(run, jobs)
            engine.swap_groups(config, env, dst, run)
            if all(r.status == "swapped" for r in run.results.values()):
                import_objects(dst, manifest.get("objects", []), list(entries))
        finally:
            leftover = [s for t, s in run.shadows.items() if run.results[t].status != "swapped"]
            with contextlib.suppress(Exception):
                shadow.drop_shadows(engine.alive(dst, config, env), leftover)
        report = engine.CopyReport(list(run.results.values()), time.monotonic() - started,
                                    threads)
        report.verify = VerifyReport([run.checks.get(t) or TableCheck(t, error=r.error)
                                      for t, r in run.results.items()])
    engine.record(config, env, env, report)
    if not report.ok:
        failed = [r for r in report.tables if r.status != "swapped"]
        error = engine.CopyFailed(f"{len(failed)} table(s) not imported into {env.name} (old "
                                   f"data kept): {failed[0].table}: {failed[0].error}", report)
        if any(r.status == "mismatch" for r in failed):
            error.exit_code = EXIT_VERIFY
        raise error
    return report


def _create_missing(dst: Any, folder: Path, names: list[str]) -> None:
    existing = set(base_tables(dst))
    wanted = [n for n in names if n not in existing]
    if not wanted:
        return
    statements = (folder / SCHEMA).read_text(encoding="utf-8").split(";\n")
    dst.execute("SET SESSION foreign_key_checks = 0")
    for name in wanted:
        head = f"CREATE TABLE {quote(name)} ("
        stmt = next((s.strip() for s in statements if s.strip().startswith(head)), None)
        if stmt is None:
            raise DataError(f"{folder / SCHEMA}: no CREATE TABLE for {name!r}")
        dst.execute(stmt)
        log.info("created table %s from %s", name, SCHEMA)
    dst.execute("SET SESSION foreign_key_checks = 1")


def _import_plan(dst: Any, entry: dict[str, Any],
                 splits: dict[str, shadow.ShadowPlan]) -> TablePlan:
    info = inspect_table(dst, entry["name"])
    if [list(c.signature) for c in info.columns] != entry["columns"]:
        raise DataError(f"table {entry['name']!r} on {dst.env.name} has other columns than the "
                        "export", hint="make the structure match (schema.sql in the export "
                        "folder has the exported definition)")
    frames = [chunking.Chunk(entry["name"], i, f["lo"], f["hi"], f["column"])
              for i, f in enumerate(entry["frames"])]
    split = splits[entry["name"]]
    return TablePlan(entry["name"], entry["rows"], entry["bytes"], (), frames,
                     len(split.index_clauses), len(split.fk_clauses), info, shadow=split)


def _import_job(config: Config, tools: engine.Tools, run: engine.Run, folder: Path,
                entries: dict[str, dict[str, Any]]) -> engine.Job:
    def job(chunk: chunking.Chunk) -> tuple[int, int]:
        entry = entries[chunk.table]
        frame = entry["frames"][chunk.index]
        spec = encode.LoadSpec(entry["load"]["targets"], entry["load"]["sets"])
        engine.load_chunk(config.settings, tools, run, chunk,
                           [(_frame_feed(folder / entry["file"], frame), spec)])
        rows, total = frame["sums"]
        return int(rows), int(total)
    return job
