"""Benchmark: `dumpload backup create/restore` against the plain shell pipelines.

    python scripts/bench_backup.py [--rows N] [--dir SANDBOX_DIR] [--keep]

Compares, on the benchmark dataset (scripts/bench_dataset.py):
- create:  `dumpload backup create`  vs  `mariadb-dump --single-transaction DB | zstd -3 -T0`
  (target: at most 1.15x the time, file no larger);
- restore: `dumpload backup restore --no-backup` (work tables loaded in parallel,
  settings.threads) vs `zstd -dc FILE | mariadb DB` (target: at least as fast), and vs
  `myloader -t N` restoring a `mydumper -c -t N` backup of the same data (target: dumpload
  at least 1.2x faster; skipped when mydumper is not installed).
`run(ctx) -> dict` is what `scripts/bench` calls; ctx (a mapping or an object) gives
`host`, `port`, `database` (the built dataset on the source), `work_dir`, and optionally
`target_host`/`target_port` (restores go there; default: a second database on the source).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))


def _get(ctx: Any, key: str, default: Any = None) -> Any:
    if isinstance(ctx, dict):
        return ctx.get(key, default)
    return getattr(ctx, key, default)


def _dumpload() -> str:
    exe = Path(sys.executable).parent / "dumpload"
    return str(exe) if exe.exists() else "dumpload"


def _timed(argv: list[str] | str, **kwargs: Any) -> float:
    t0 = time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, **kwargs)
    return time.monotonic() - t0


def _sql(host: str, port: int, sql: str) -> None:
    subprocess.run(["mariadb", "-h", host, "-P", str(port), "-uroot", "-e", sql], check=True)


def run(ctx: Any) -> dict[str, Any]:
    """Time both pipelines for create and restore; return the figures (seconds, bytes)."""
    host, port, db = _get(ctx, "host", "127.0.0.1"), int(_get(ctx, "port")), _get(
        ctx, "database", "bench")
    t_host = _get(ctx, "target_host") or host
    t_port = int(_get(ctx, "target_port") or port)
    work = Path(_get(ctx, "work_dir") or tempfile.mkdtemp(prefix="bench-backup-"))
    work.mkdir(parents=True, exist_ok=True)
    threads = int(_get(ctx, "threads", 4))
    restore_db = f"{db}_restore"
    config = work / "backup-bench.json"
    entry = {"user": "root", "password": ""}
    config.write_text(json.dumps({
        "databases": {"bench": {**entry, "host": host, "port": port, "database": db},
                      "restore": {**entry, "host": t_host, "port": t_port,
                                  "database": restore_db}},
        "replication": {"source": "bench", "target": "restore"},
        "settings": {"backup_dir": str(work / "backups"), "log_dir": str(work / "logs"),
                     "threads": threads, "compression_level": 3}}))
    conn = f"-h {host} -P {port} -uroot"
    ref_file = work / "reference.sql.zst"
    cli = [_dumpload(), "--config", str(config)]
    out: dict[str, Any] = {"database": db, "threads": threads}

    # Warm the buffer pool once so neither side pays for the first read from disk.
    subprocess.run(f"mariadb-dump {conn} --single-transaction {db} > /dev/null", shell=True,
                   check=True)
    ref_create = _timed(f"mariadb-dump {conn} --single-transaction {db} | zstd -3 -T0 -q "
                        f"> {ref_file}", shell=True)
    ours_create = _timed([*cli, "backup", "create", "--env", "bench"])
    listing = subprocess.run([*cli, "backup", "list", "--env", "bench", "--json"], check=True,
                             capture_output=True, text=True).stdout
    backup = json.loads(listing)[0]
    out["create"] = {"reference_seconds": round(ref_create, 2),
                     "dumpload_seconds": round(ours_create, 2),
                     "ratio": round(ours_create / ref_create, 3),
                     "reference_bytes": ref_file.stat().st_size,
                     "dumpload_bytes": backup["size"],
                     "size_ratio": round(backup["size"] / ref_file.stat().st_size, 4)}

    _sql(t_host, t_port, f"DROP DATABASE IF EXISTS `{restore_db}`; "
                         f"CREATE DATABASE `{restore_db}`")
    ref_restore = _timed(f"zstd -dc -q {ref_file} | mariadb -h {t_host} -P {t_port} -uroot "
                         f"{restore_db}", shell=True)
    _sql(t_host, t_port, f"DROP DATABASE `{restore_db}`; CREATE DATABASE `{restore_db}`")
    ours_restore = _timed([*cli, "backup", "restore", backup["id"], "--env", "restore",
                           "--yes", "--no-backup"])
    out["restore"] = {"reference_seconds": round(ref_restore, 2),
                      "dumpload_seconds": round(ours_restore, 2),
                      "ratio": round(ours_restore / ref_restore, 3)}
    out["myloader"] = _myloader(work, host, port, db, t_host, t_port, restore_db, threads,
                                ours_restore)
    _sql(t_host, t_port, f"DROP DATABASE IF EXISTS `{restore_db}`")
    out["ok"] = (out["create"]["ratio"] <= 1.15 and out["create"]["size_ratio"] <= 1.0
                 and out["restore"]["ratio"] <= 1.0
                 and out["myloader"].get("speedup", 1.2) >= 1.2)
    return out


def _myloader(work: Path, host: str, port: int, db: str, t_host: str, t_port: int,
              restore_db: str, threads: int, ours: float) -> dict[str, Any]:
    """`myloader` restoring a compressed `mydumper` backup, the same threads as ours."""
    import shutil
    if not shutil.which("mydumper") or not shutil.which("myloader"):
        return {"skipped": "mydumper/myloader not installed"}
    folder = work / "mydumper"
    shutil.rmtree(folder, ignore_errors=True)
    subprocess.run(["mydumper", "-h", host, "-P", str(port), "-u", "root", "-B", db, "-c",
                    "-t", str(threads), "--rows", "200000", "--trx-consistency-only",
                    "-o", str(folder)], check=True, stdout=subprocess.DEVNULL)
    _sql(t_host, t_port, f"DROP DATABASE IF EXISTS `{restore_db}`")
    load = _timed(["myloader", "-h", t_host, "-P", str(t_port), "-u", "root", "-B", restore_db,
                   "-t", str(threads), "-d", str(folder)])
    shutil.rmtree(folder, ignore_errors=True)
    return {"myloader_seconds": round(load, 2), "dumpload_seconds": round(ours, 2),
            "speedup": round(load / ours, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows in `orders`")
    parser.add_argument("--dir", default=os.environ.get("DUMPLOAD_BENCH_SANDBOX",
                                                         "/tmp/dumpload-bench-sandbox"))
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--keep", action="store_true", help="leave the sandbox running")
    args = parser.parse_args()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "sandbox"), "start", "--dir",
                    args.dir], check=True, stdout=subprocess.DEVNULL)
    info = json.loads((Path(args.dir) / "sandbox.json").read_text())
    import bench_dataset
    src, dst = info["source"], info["target"]
    bench_dataset.build(src["host"], int(src["port"]), "bench", rows=args.rows)
    try:
        result = run({"host": src["host"], "port": src["port"], "database": "bench",
                      "target_host": dst["host"], "target_port": dst["port"],
                      "work_dir": str(Path(args.dir) / "bench-backup"),
                      "threads": args.threads})
    finally:
        if not args.keep:
            subprocess.run([sys.executable, str(ROOT / "scripts" / "sandbox"), "stop", "--dir",
                            args.dir], check=False, stdout=subprocess.DEVNULL)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
