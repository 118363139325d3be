"""No password on disk, ever: not while the tools run, not after a SIGKILL.

The test account gets a real, distinctive password. The servers only ever see its hash
(`IDENTIFIED BY PASSWORD`), so a server's own files cannot hold the plain text either;
then a kill -9 of dumpload in the middle of `data` and of `backup create` must leave no
file holding it in the temp dirs, the backup dir, the log dir or the config's folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from dumpload import tools
from dumpload.config import load_config
from dumpload.tools import Process, base_argv, defaults_file, find_binary, sweep_stale_credentials
from tests.support import TestEnv, dumpload_command, wait_for


def native_hash(password: str) -> str:
    """mysql_native_password's stored form: '*' + hex(SHA1(SHA1(password)))."""
    return "*" + hashlib.sha1(hashlib.sha1(password.encode()).digest()).hexdigest().upper()


PASSWORD_ENV = "DUMPLOAD_TEST_SECRET_PW"


@pytest.fixture
def secret_env(env: TestEnv, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[TestEnv, str]]:
    """`env` whose config logs in as a user with a distinctive password on both servers.

    The config names the password by `password_env`, so config.json itself holds none and
    any copy of it on disk is dumpload's doing."""
    password = f"Dl-Pw-{uuid.uuid4().hex[:12]}-q#9"
    monkeypatch.setenv(PASSWORD_ENV, password)
    user = f"dl_pw_{env.database[-6:]}"
    for run in (env.src, env.dst):
        run(f"CREATE USER '{user}'@'%' IDENTIFIED BY PASSWORD '{native_hash(password)}'",
            f"GRANT ALL ON `{env.database}`.* TO '{user}'@'%'")
    doc = json.loads(env.config_path.read_text())
    for entry in doc["databases"].values():
        entry.pop("password", None)
        entry.update(user=user, password_env=PASSWORD_ENV)
    env.config_path.write_text(json.dumps(doc))
    yield env, password
    for run in (env.src, env.dst):
        run(f"DROP USER IF EXISTS '{user}'@'%'")


def current_user(env: TestEnv, defaults: tools.ClientDefaults, binary: tools.Binary,
                 seconds: float = 0.3) -> str:
    argv = [*base_argv(binary, defaults), "--batch", "--skip-column-names",
            f"--execute=SELECT CURRENT_USER(), SLEEP({seconds})"]
    with Process(argv, what="client", defaults=defaults) as proc:
        out = proc.stdout.read().decode()
        proc.check()
    return out.split("\t")[0]


@pytest.mark.parametrize("memfd", [True, False], ids=["memfd", "pipe"])
def test_clients_read_credentials_from_memory(secret_env: tuple[TestEnv, str], memfd: bool,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Several clients at once and the dump tool all log in with the in-memory options,
    through a memfd and through the pipe fallback."""
    env, _ = secret_env
    if not memfd:
        monkeypatch.setattr(tools, "_memfd", lambda data: None)
    db = load_config(env.config_path).source
    client, dump = find_binary("client"), find_binary("dump")
    user = db.user
    with defaults_file(db, client) as defaults:
        if memfd:
            assert os.fstat(defaults.fd).st_mode & 0o777 == 0o600
        users: list[str] = []
        threads = [threading.Thread(target=lambda: users.append(current_user(env, defaults,
                                                                             client)))
                   for _ in range(5)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert users == [f"{user}@%"] * 5
    env.src("CREATE TABLE t (id INT PRIMARY KEY)", "INSERT INTO t VALUES (1), (2)")
    with defaults_file(db, dump) as defaults:
        argv = [*base_argv(dump, defaults), "--skip-comments", "--", db.database, "t"]
        with Process(argv, what="dump", defaults=defaults) as proc:
            out = proc.stdout.read().decode()
            proc.check()
    assert "INSERT INTO `t` VALUES" in out and "(2);" in out


def make_cred_folder(temp: Path, name: str, password: str, age: float) -> Path:
    folder = temp / name
    folder.mkdir(parents=True)
    (folder / "client.cnf").write_text(f"[client]\npassword={password}\n")
    then = time.time() - age
    for path in (folder / "client.cnf", folder):
        os.utime(path, (then, then))
    return folder


def test_stale_credential_folders_are_swept(secret_env: tuple[TestEnv, str],
                                            tmp_path: Path) -> None:
    """Folders an older dumpload left (`dumpload-cred-*`, password inside) go at start;
    one an older dumpload may still use (recent, or named by a live process) stays."""
    env, password = secret_env
    temp = tmp_path / "tmp"
    stale = make_cred_folder(temp, "dumpload-cred-old1", password, 2 * tools.STALE_AFTER)
    recent = make_cred_folder(temp, "dumpload-cred-new1", password, 60)
    used = make_cred_folder(temp, "dumpload-cred-used", password, 2 * tools.STALE_AFTER)
    other = make_cred_folder(temp, "unrelated", password, 2 * tools.STALE_AFTER)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)",
                               f"--defaults-extra-file={used}/client.cnf"])
    try:
        wait_for(lambda: str(used).encode() in Path(f"/proc/{holder.pid}/cmdline").read_bytes())
        assert sweep_stale_credentials([temp]) == [stale]
    finally:
        holder.kill()
        holder.wait()
    assert recent.exists() and used.exists() and other.exists()
    again = make_cred_folder(temp, "dumpload-cred-old2", password, 2 * tools.STALE_AFTER)
    result = env.run_process("tables", "--env", "development",
                             env={**os.environ, "TMPDIR": str(temp)})
    assert result.returncode == 0, result.stderr
    assert not again.exists() and not used.exists() and recent.exists()


def children(pid: int) -> dict[int, str]:
    """pid → command line of `pid`'s child processes."""
    out = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                out[int(entry.name)] = (entry / "cmdline").read_bytes().replace(
                    b"\0", b" ").decode()
        except (OSError, ValueError, IndexError):
            continue
    return out


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200]
    except OSError:
        return "?"


def leaks_in_proc(pids: list[int], secret: bytes) -> list[str]:
    """/proc/PID/cmdline or environ files of `pids` that hold `secret`."""
    found = []
    for pid in pids:
        for name in ("cmdline", "environ"):
            try:
                if secret in Path(f"/proc/{pid}/{name}").read_bytes():
                    found.append(f"{pid}/{name}: {command_line(pid)}")
            except OSError:
                continue
    return found


def files_holding(secret: bytes, roots: list[Path], since: float) -> list[str]:
    """Files under `roots` changed since `since` whose bytes hold `secret`. Servers' data
    folders (test sandboxes) are skipped: dumpload never writes there."""
    found = []
    for root in roots:
        for folder, dirs, files in os.walk(root, onerror=lambda e: None):
            dirs[:] = [d for d in dirs if not d.startswith(("dl-sb-", "dumpload-test-sandbox"))
                       and not (Path(folder) / d).is_symlink()]
            for name in files:
                path = Path(folder) / name
                try:
                    st = path.lstat()
                    if not path.is_file() or path.is_symlink() or st.st_mtime < since - 1 \
                            or st.st_size > 256 << 20:
                        continue
                    if secret in path.read_bytes():
                        found.append(str(path.resolve()))
                except OSError:
                    continue
    return sorted(set(found))


def kill_when(env: TestEnv, args: list[str], ready: str, temp: Path,
              secret: bytes) -> tuple[int, list[str]]:
    """Start dumpload, SIGKILL it as soon as a child whose command line holds `ready`
    runs; return its exit status and the tools' /proc entries that showed `secret`."""
    proc = subprocess.Popen([dumpload_command(), "--config", str(env.config_path), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "TMPDIR": str(temp)})
    leaks: list[str] = []
    try:
        wait_for(lambda: any(ready in c for c in children(proc.pid).values())
                 or proc.poll() is not None, timeout=120)
        time.sleep(0.3)  # well inside the tool's run
        assert proc.poll() is None, "dumpload finished before it could be killed"
        tools_running = list(children(proc.pid))
        assert tools_running
        leaks = leaks_in_proc(tools_running, secret)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return proc.returncode, leaks


def big_table(env: TestEnv, rows: int) -> None:
    env.src("CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(200), k INT, KEY (k))",
            f"INSERT INTO big SELECT seq, REPEAT(CHAR(65 + seq % 26), 200), seq % 97 "
            f"FROM seq_1_to_{rows}")
    env.dst("CREATE TABLE big (id INT PRIMARY KEY, pad CHAR(200), k INT, KEY (k))")


@pytest.mark.parametrize("command", ["data", "sync", "backup"])
def test_sigkill_leaves_no_password_on_disk(secret_env: tuple[TestEnv, str],
                                            command: str) -> None:
    env, password = secret_env
    big_table(env, 400_000)
    temp = env.folder / "tmp"
    temp.mkdir()
    since = time.time()
    secret = password.encode()
    if command in ("data", "sync"):
        # Killed while the loaders stream rows (after its pre-change backup). The config
        # names the password by `password_env`: dumpload's own environment holds it, the
        # tools' must not.
        code, leaks = kill_when(env, [command, "--yes", "--threads", "2"], "--local-infile",
                                temp, secret)
    else:
        code, leaks = kill_when(env, ["backup", "create", "--env", "development"],
                                "mariadb-dump", temp, secret)
    assert code == -signal.SIGKILL
    assert leaks == []
    time.sleep(0.5)  # orphaned tools see their pipes close and exit
    roots = [temp, Path("/tmp"), env.folder, env.folder / "backups", env.folder / "logs"]
    control = env.folder / "logs" / "control"  # the scan must see a planted copy
    control.write_text(f"x{password}x")
    assert files_holding(password.encode(), roots, since) == [str(control.resolve())]
    control.unlink()
    assert files_holding(password.encode(), roots, since) == []
    assert not list(Path("/tmp").glob("dumpload-cred-*"))
    assert not list(temp.glob("dumpload-cred-*"))
