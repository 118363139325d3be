"""The swap on a live target: kills at many points, metadata-lock waits, writers, definers.

Every test here drives the installed `dumpload` against the real target server while
other connections play the application.
"""

from __future__ import annotations

import contextlib
import subprocess
import threading
import time
from collections.abc import Callable, Iterator

import pymysql
import pytest

from tests.support import TestEnv, dumpload_command, table_digest, wait_for

PARENTS, CHILDREN = 20_000, 40_000
OLD = 1000  # rows of the target before the copy; ids 1..OLD exist on both sides

SCHEMA = (
    "CREATE TABLE p (id INT PRIMARY KEY, name VARCHAR(64) NOT NULL, note TEXT, KEY ix_name (name))",
    "CREATE TABLE c (id INT PRIMARY KEY, p_id INT NOT NULL, val VARCHAR(80), "
    "touched INT NOT NULL DEFAULT 0, KEY ix_val (val), "
    "CONSTRAINT fk_c_p FOREIGN KEY (p_id) REFERENCES p (id))",
    "CREATE TABLE o (id INT PRIMARY KEY, p_id INT, "
    "CONSTRAINT fk_o_p FOREIGN KEY (p_id) REFERENCES p (id))",
    "CREATE TRIGGER trg_c BEFORE INSERT ON c FOR EACH ROW SET NEW.touched = NEW.touched + 1",
)


def build(env: TestEnv, parents: int = PARENTS, children: int = CHILDREN) -> None:
    """p ← c (FK, trigger on c) and o → p outside the copied tables."""
    env.src(*SCHEMA)
    env.dst(*SCHEMA)
    env.src(f"INSERT INTO p SELECT seq, CONCAT('new ', seq), REPEAT('n', 200) "
            f"FROM seq_1_to_{parents}",
            f"INSERT INTO c (id, p_id, val) SELECT seq, 1 + seq % {parents}, MD5(seq) "
            f"FROM seq_1_to_{children}", "ANALYZE TABLE p, c")
    reset_target(env)


def reset_target(env: TestEnv) -> None:
    env.dst("SET foreign_key_checks = 0", "DELETE FROM o", "DELETE FROM c", "DELETE FROM p",
            f"INSERT INTO p SELECT seq, CONCAT('old ', seq), 'old' FROM seq_1_to_{OLD}",
            f"INSERT INTO c (id, p_id, val) SELECT seq, seq, 'old' FROM seq_1_to_{OLD}",
            f"INSERT INTO o SELECT seq, seq FROM seq_1_to_{OLD // 10}")


_SOURCE: dict[str, dict[str, tuple[int, str]]] = {}


def state(env: TestEnv) -> str:
    """"old", "new", or a description of what is wrong."""
    digest = {t: table_digest(env.target, env.database, t) for t in ("p", "c")}
    if env.database not in _SOURCE:  # the source never changes within a test
        _SOURCE[env.database] = {t: table_digest(env.source, env.database, t)
                                 for t in ("p", "c")}
    new = _SOURCE[env.database]
    olds = env.dst("SELECT (SELECT COUNT(*) FROM p WHERE name LIKE 'old %'), "
                   "(SELECT COUNT(*) FROM c WHERE val = 'old')")[0]
    if digest == new:
        return "new"
    if digest["p"][0] == OLD and digest["c"][0] == OLD and olds == (OLD, OLD):
        return "old"
    return f"mixed: {digest['p'][0]} parents, {digest['c'][0]} children, old marks {olds}"


def objects_ok(env: TestEnv) -> str | None:
    """None when the trigger and all FKs are in place on the live tables."""
    triggers = env.dst("SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE FROM information_schema.TRIGGERS "
                       f"WHERE TRIGGER_SCHEMA = '{env.database}'")
    fks = env.dst("SELECT CONSTRAINT_NAME, TABLE_NAME, REFERENCED_TABLE_NAME FROM "
                  "information_schema.REFERENTIAL_CONSTRAINTS "
                  f"WHERE CONSTRAINT_SCHEMA = '{env.database}' ORDER BY 1")
    if sorted(triggers) != [("trg_c", "c")]:
        return f"triggers: {triggers}"
    if sorted(fks) != [("fk_c_p", "c", "p"), ("fk_o_p", "o", "p")]:
        return f"foreign keys: {fks}"
    return None


def work_tables(env: TestEnv) -> list[tuple]:
    return env.dst("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = "
                   f"'{env.database}' AND TABLE_NAME LIKE '\\_dl\\_%'")


def command(env: TestEnv, *args: str) -> list[str]:
    return [dumpload_command(), "--config", str(env.config_path), *args]


DATA = ("data", "--yes", "--no-backup", "--tables", "p", "--tables", "c")


def kill_matrix(env: TestEnv, argv: list[str], reset: Callable[[], None], points: int,
                after_kill: Callable[[], str | None],
                after_rerun: Callable[[], str | None]) -> list[str]:
    """SIGKILL `argv` at `points` instants spread over its run time (the process only, as a
    crash would), check, rerun, check again; returns one failure line per bad point."""
    reset()
    started = time.monotonic()
    first = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    full = time.monotonic() - started
    failures = []
    for k in range(points):
        at = 0.1 + k * (full + 0.1) / max(1, points - 1)
        reset()
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(at)
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        time.sleep(1.0)
        bad = after_kill()
        rerun = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        later = after_rerun() if rerun.returncode == 0 else f"rerun failed: {rerun.stderr[-600:]}"
        if bad or later:
            failures.append(f"kill at {at:.2f}s of {full:.2f}s: after kill: {bad}; "
                            f"after rerun: {later}")
    return failures


def test_kill_at_many_points_of_data_leaves_old_or_new_with_trigger_and_fks(env: TestEnv) -> None:
    build(env)

    def after_kill() -> str | None:
        now = state(env)
        return (now if now not in ("old", "new") else None) or objects_ok(env)

    def after_rerun() -> str | None:
        return (state(env) if state(env) != "new" else None) or objects_ok(env) or (
            f"work tables left: {work_tables(env)}" if work_tables(env) else None)

    failures = kill_matrix(env, command(env, *DATA), lambda: reset_target(env), 10,
                           after_kill, after_rerun)
    assert not failures, "\n".join(failures)


def test_kill_at_many_points_of_sync_then_rollback(env: TestEnv) -> None:
    build(env, 10_000, 20_000)
    env.src("ALTER TABLE c ADD COLUMN extra INT NULL")

    def reset() -> None:
        with contextlib.suppress(pymysql.err.MySQLError):
            env.dst("ALTER TABLE c DROP COLUMN extra")
        reset_target(env)

    def after_kill() -> str | None:
        now = state_ignoring_extra(env)
        return (now if now not in ("old", "new") else None) or objects_ok(env)

    def after_rerun() -> str | None:
        return (None if state_ignoring_extra(env) == "new" else state_ignoring_extra(env)) \
            or objects_ok(env) or (f"work tables: {work_tables(env)}" if work_tables(env) else None)

    argv = command(env, "sync", "--yes", "--tables", "p", "--tables", "c")
    try:
        failures = kill_matrix(env, argv, reset, 10, after_kill, after_rerun)
    finally:
        # A sync killed during its structure rehearsal leaves its scratch schema for a
        # later run to drop after an hour; other tests expect none on the server.
        for (name,) in env.target.sql(None, "SHOW DATABASES LIKE '\\_dl\\_rehearsal%'"):
            env.target.sql(None, f"DROP DATABASE IF EXISTS `{name}`")
    assert not failures, "\n".join(failures)
    rolled = subprocess.run(command(env, "rollback", "--yes"), capture_output=True, text=True,
                            timeout=300)
    assert rolled.returncode == 0, rolled.stderr
    assert state_ignoring_extra(env) == "old"
    assert objects_ok(env) is None


def state_ignoring_extra(env: TestEnv) -> str:
    counts = env.dst("SELECT (SELECT COUNT(*) FROM p), (SELECT COUNT(*) FROM c), "
                     "(SELECT COUNT(*) FROM p WHERE name LIKE 'old %'), "
                     "(SELECT COUNT(*) FROM c WHERE val = 'old')")[0]
    src = env.src("SELECT (SELECT COUNT(*) FROM p), (SELECT COUNT(*) FROM c), 0, 0")[0]
    if counts == (OLD, OLD, OLD, OLD):
        return "old"
    if counts == src:
        return "new"
    return f"mixed: {counts}"


# ---------------------------------------------------------------- metadata locks
@contextlib.contextmanager
def holding(env: TestEnv, table: str) -> Iterator[tuple[pymysql.Connection, int]]:
    """An application transaction that has read `table` and keeps its metadata lock."""
    conn = env.target.connect(env.database)
    cur = conn.cursor()
    cur.execute("START TRANSACTION")
    cur.execute(f"SELECT COUNT(*) FROM {table}")
    cur.execute("SELECT CONNECTION_ID()")
    conn_id = int(cur.fetchone()[0])
    try:
        yield conn, conn_id
    finally:
        with contextlib.suppress(pymysql.err.Error):
            conn.rollback()
            conn.close()


class Prober(threading.Thread):
    """The application's readers: how long does one query on `table` wait, at worst?"""

    def __init__(self, env: TestEnv, table: str) -> None:
        super().__init__(daemon=True)
        self.env, self.table = env, table
        self.stop = threading.Event()
        self.worst = 0.0
        self.count = 0

    def run(self) -> None:
        conn = self.env.target.connect(self.env.database)
        with conn.cursor() as cur:
            while not self.stop.is_set():
                started = time.monotonic()
                cur.execute(f"SELECT id FROM {self.table} WHERE id = 1")
                cur.fetchall()
                self.worst = max(self.worst, time.monotonic() - started)
                self.count += 1
                time.sleep(0.05)
        conn.close()


def test_held_metadata_lock_never_piles_up_and_copy_completes_after(env: TestEnv) -> None:
    build(env, 5000, 10_000)
    env.write_config(lock_wait_timeout=2, lock_wait_total=120)
    prober = Prober(env, "c")
    with holding(env, "c") as (conn, _):
        proc = subprocess.Popen(command(env, *DATA), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        prober.start()
        time.sleep(30)
        assert proc.poll() is None, "the copy must wait for the holder"
        assert state(env) == "old"
        conn.commit()
    out, err = proc.communicate(timeout=120)
    prober.stop.set()
    prober.join()
    assert proc.returncode == 0, err
    assert "metadata lock busy" in err
    assert prober.count > 50
    assert prober.worst <= 2 + 1, f"a reader waited {prober.worst:.2f} s"
    print(f"probe: {prober.count} queries, worst wait {prober.worst:.2f} s")
    assert state(env) == "new" and objects_ok(env) is None


def test_holder_that_never_ends_fails_with_exit_6_naming_it(env: TestEnv) -> None:
    build(env, 2000, 4000)
    env.write_config(lock_wait_timeout=1, lock_wait_total=6)
    with holding(env, "p") as (_, conn_id):
        started = time.monotonic()
        result = subprocess.run(command(env, *DATA), capture_output=True, text=True,
                                timeout=120)
        took = time.monotonic() - started
    assert result.returncode == 6, result.stderr
    assert f"connection {conn_id}" in result.stderr
    assert "Traceback" not in result.stderr
    assert took < 6 + 15
    assert state(env) == "old" and objects_ok(env) is None and work_tables(env) == []


# ---------------------------------------------------------------- writers
class Writer(threading.Thread):
    """The application inserting into `table`, one autocommitted row at a time."""

    def __init__(self, env: TestEnv, sql: Callable[[int], str]) -> None:
        super().__init__(daemon=True)
        self.env, self.sql = env, sql
        self.stop = threading.Event()
        self.committed: list[int] = []
        self.errors: list[str] = []

    def run(self) -> None:
        conn = self.env.target.connect(self.env.database)
        i = 0
        with conn.cursor() as cur:
            while not self.stop.is_set():
                i += 1
                try:
                    cur.execute(self.sql(i))
                    self.committed.append(i)
                except pymysql.err.MySQLError as exc:
                    self.errors.append(str(exc))
                time.sleep(0.02)
        conn.close()


def loading(env: TestEnv) -> bool:
    return bool(env.target.sql(None, "SELECT ID FROM information_schema.PROCESSLIST WHERE "
                               f"DB = '{env.database}' AND INFO LIKE 'LOAD DATA%'"))


def test_write_during_copy_is_never_lost(env: TestEnv) -> None:
    build(env)
    writer = Writer(env, lambda i: f"INSERT INTO p VALUES ({10_000_000 + i}, 'app {i}', 'x')")
    proc = subprocess.Popen(command(env, *DATA), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    wait_for(lambda: loading(env))
    writer.start()
    _, err = proc.communicate(timeout=300)
    writer.stop.set()
    writer.join()
    assert proc.returncode == 6, err
    assert "written to" in err and "--lock-target" in err
    assert writer.committed and not writer.errors
    ids = {r[0] - 10_000_000 for r in env.dst("SELECT id FROM p WHERE id > 10000000")}
    assert set(writer.committed) <= ids, "a committed application write was lost"
    assert env.dst("SELECT COUNT(*) FROM p WHERE name LIKE 'old %'") == [(OLD,)]
    assert objects_ok(env) is None and work_tables(env) == []


def test_lock_target_blocks_writers_and_queued_inserts_see_trigger_and_fk(env: TestEnv) -> None:
    build(env)
    env.dst("SET GLOBAL innodb_lock_wait_timeout = 300")
    writer = Writer(env, lambda i: "INSERT INTO c (id, p_id, val) "
                    f"VALUES ({10_000_000 + i}, {1 + i % OLD}, 'app')")
    proc = subprocess.Popen(command(env, *DATA, "--lock-target"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    wait_for(lambda: loading(env))
    writer.start()
    _, err = proc.communicate(timeout=300)
    time.sleep(0.5)
    writer.stop.set()
    writer.join()
    assert proc.returncode == 0, err
    assert writer.committed and not writer.errors, writer.errors[:3]
    rows = env.dst("SELECT id, touched FROM c WHERE id > 10000000")

    assert {r[0] - 10_000_000 for r in rows} == set(writer.committed)
    assert all(r[1] == 1 for r in rows), "an insert after the swap did not fire the trigger"
    assert env.dst("SELECT COUNT(*) FROM c LEFT JOIN p ON p.id = c.p_id WHERE p.id IS NULL") \
        == [(0,)]
    assert objects_ok(env) is None and work_tables(env) == []


# ---------------------------------------------------------------- accounts, preflight
@pytest.fixture
def deployer(env: TestEnv) -> Iterator[str]:
    """A target account with every privilege on the database and no SUPER."""
    user = f"dep_{env.database[-6:]}"
    env.target.sql(None, f"CREATE USER '{user}'@'%' IDENTIFIED BY 'Dep-pw-1'",
                   f"GRANT ALL PRIVILEGES ON `{env.database}`.* TO '{user}'@'%'")
    yield user
    env.target.sql(None, f"DROP USER IF EXISTS '{user}'@'%'")


def use_target_account(env: TestEnv, user: str, password: str) -> None:
    import json
    doc = json.loads(env.config_path.read_text())
    doc["databases"]["production"].update(user=user, password=password)
    env.config_path.write_text(json.dumps(doc))


def test_non_super_account_keeps_a_trigger_of_a_foreign_definer(env: TestEnv,
                                                                  deployer: str) -> None:
    build(env, 3000, 6000)
    env.dst("DROP TRIGGER trg_c",
            "CREATE DEFINER=`root`@`localhost` TRIGGER trg_c BEFORE INSERT ON c FOR EACH ROW "
            "SET NEW.touched = NEW.touched + 1")
    use_target_account(env, deployer, "Dep-pw-1")
    result = subprocess.run(command(env, *DATA), capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert state(env) == "new" and objects_ok(env) is None
    env.dst("INSERT INTO c (id, p_id, val) VALUES (99999999, 1, 'x')")
    assert env.dst("SELECT touched FROM c WHERE id = 99999999") == [(1,)]


def test_local_infile_off_stops_sync_before_any_change(env: TestEnv) -> None:
    build(env, 100, 200)
    env.src("ALTER TABLE p ADD COLUMN extra INT NULL")
    before = env.dst("SHOW CREATE TABLE p")
    env.target.sql(None, "SET GLOBAL local_infile = 0")
    try:
        started = time.monotonic()
        result = subprocess.run(command(env, "sync", "--yes"), capture_output=True, text=True,
                                timeout=60)
        took = time.monotonic() - started
    finally:
        env.target.sql(None, "SET GLOBAL local_infile = 1")
    assert result.returncode == 6, result.stderr
    assert "local_infile" in result.stderr and "SET GLOBAL local_infile = ON" in result.stderr
    assert took < 5
    assert env.dst("SHOW CREATE TABLE p") == before
    assert not (env.folder / "backups").exists() or not any((env.folder / "backups").rglob(
        "*.sql.zst"))


def test_second_writer_is_refused_at_once_naming_the_holder(env: TestEnv) -> None:
    build(env)
    first = subprocess.Popen(command(env, *DATA), stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: loading(env))
        started = time.monotonic()
        second = subprocess.run(command(env, "sync", "--yes"), capture_output=True, text=True,
                                timeout=60)
        took = time.monotonic() - started
    finally:
        first.wait(300)
    assert second.returncode == 2, second.stderr
    assert f"pid {first.pid}" in second.stderr and "data run" in second.stderr
    assert took < 5
    assert first.returncode == 0
    assert state(env) == "new"


def test_structure_settles_an_old_style_interrupted_swap_first(env: TestEnv) -> None:
    """What an earlier version left after a kill: the old table holding the FK name and
    the trigger, the new table bare."""
    build(env, 100, 200)
    env.dst("SET foreign_key_checks = 0", "RENAME TABLE c TO _dl_old_c",
            "CREATE TABLE c LIKE _dl_old_c", "INSERT INTO c SELECT * FROM _dl_old_c")
    result = subprocess.run(command(env, "structure", "--yes"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert "settled" in result.stderr
    assert objects_ok(env) is None and work_tables(env) == []


def test_keep_definer_without_the_privilege_is_refused_before_any_change(
        env: TestEnv, deployer: str) -> None:
    env.src("CREATE TABLE t (id INT PRIMARY KEY)",
            "CREATE DEFINER=`root`@`localhost` SQL SECURITY DEFINER VIEW v AS SELECT id FROM t")
    use_target_account(env, deployer, "Dep-pw-1")
    result = subprocess.run(command(env, "structure", "--yes", "--keep-definer"),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 5, result.stderr
    assert "view v (DEFINER=root@localhost)" in result.stderr
    assert env.dst("SHOW TABLES") == []
    done = subprocess.run(command(env, "structure", "--yes"), capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert env.dst("SELECT DEFINER FROM information_schema.VIEWS "
                   f"WHERE TABLE_SCHEMA = '{env.database}'") == [(f"{deployer}@%",)]


def test_missing_privilege_is_refused_before_any_change(env: TestEnv, deployer: str) -> None:
    build(env, 100, 200)
    env.target.sql(None, f"REVOKE LOCK TABLES ON `{env.database}`.* FROM '{deployer}'@'%'")
    use_target_account(env, deployer, "Dep-pw-1")
    result = subprocess.run(command(env, "data", "--yes"), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 6, result.stderr
    assert "lacks LOCK TABLES" in result.stderr and "GRANT LOCK TABLES ON" in result.stderr
    assert state(env) == "old" and work_tables(env) == []
    assert not (env.folder / "backups").exists() or not any(
        (env.folder / "backups").rglob("*.sql.zst"))
