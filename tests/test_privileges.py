"""doctor's privilege list is the truth: exactly it runs the writing commands end to end,
and one privilege less fails doctor, naming the privilege and what it blocks."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from dumpload.privileges import Requirement, required
from tests.support import Server, TestEnv, schema_digest

PASSWORD = "Pw-9dL-restricted"


def grant_sql(reqs: list[Requirement], database: str, who: str) -> list[str]:
    on_db = sorted({r.privilege for r in reqs if r.on == "database"})
    out = [f"GRANT {', '.join(on_db)} ON `{database}`.* TO {who}"]
    out += [f"GRANT {r.privilege} ON {r.on} TO {who}" for r in reqs if r.on != "database"]
    return out


@pytest.fixture
def restricted(env: TestEnv) -> Iterator[dict[str, str]]:
    """One account per server with exactly doctor's list for its role; config uses them."""
    users = {}
    for role, server, env_name in (("source", env.source, "development"),
                                   ("target", env.target, "production")):
        user = f"dl_{role[0]}_{env.database[-6:]}"
        who = f"'{user}'@'%'"
        server.sql(None, f"CREATE USER {who} IDENTIFIED BY '{PASSWORD}'",
                   *grant_sql(required(role, "mariadb"), env.database, who))
        users[env_name] = user
    doc = json.loads(env.config_path.read_text())
    for env_name, user in users.items():
        doc["databases"][env_name].update(user=user, password=PASSWORD)
    env.config_path.write_text(json.dumps(doc))
    try:
        yield users
    finally:
        for server, user in ((env.source, users["development"]),
                             (env.target, users["production"])):
            server.sql(None, f"DROP USER IF EXISTS '{user}'@'%'")


def _revoke(server: Server, database: str, user: str, privilege: str) -> None:
    server.sql(None, f"REVOKE {privilege} ON `{database}`.* FROM '{user}'@'%'")


def test_exactly_doctors_list_runs_backup_restore_sync_rollback(
        env: TestEnv, restricted: dict[str, str]) -> None:
    schema = ["CREATE TABLE parent (id INT PRIMARY KEY, name VARCHAR(20))",
              "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, KEY (parent_id), "
              "CONSTRAINT fk_c FOREIGN KEY (parent_id) REFERENCES parent (id))",
              "INSERT INTO parent SELECT seq, CONCAT('p', seq) FROM seq_1_to_50",
              "INSERT INTO child SELECT seq, 1 + seq % 50 FROM seq_1_to_500",
              "CREATE VIEW v AS SELECT id FROM parent",
              "CREATE TRIGGER trg BEFORE INSERT ON child FOR EACH ROW SET NEW.id = NEW.id",
              "CREATE PROCEDURE p_count() SELECT COUNT(*) FROM child"]
    env.src(*schema, "ALTER TABLE parent ADD COLUMN note VARCHAR(10) NULL",
            "UPDATE parent SET name = UPPER(name)")
    env.dst(*schema)  # created by root: DEFINER=root on the view, trigger and procedure
    doctor = env.run("doctor", "--json")
    assert doctor.exit_code == 0, doctor.stdout
    before = schema_digest(env.target, env.database)
    full = env.run("backup", "create", "--env", "production", "--json")
    assert full.exit_code == 0, full.stderr
    backup_id = json.loads(full.stdout)["id"]
    env.dst("DELETE FROM child WHERE id > 100", "DROP PROCEDURE p_count")
    restored = env.run("backup", "restore", backup_id, "--env", "production", "--yes")
    assert restored.exit_code == 0, restored.stderr
    assert schema_digest(env.target, env.database) == before
    assert env.dst("SELECT COUNT(*) FROM information_schema.ROUTINES "
                   f"WHERE ROUTINE_SCHEMA = '{env.database}'") == [(1,)]
    synced = env.run("sync", "--yes", "--json")
    assert synced.exit_code == 0, synced.stderr
    assert env.run("verify").exit_code == 0
    rolled = env.run("rollback", "--yes")
    assert rolled.exit_code == 0, rolled.stderr
    assert schema_digest(env.target, env.database) == before


@pytest.mark.parametrize("privilege, blocked", [("LOCK TABLES", "rollback"),
                                                ("SHOW VIEW", "backup create"),
                                                ("TRIGGER", "backup restore")])
def test_one_privilege_less_fails_doctor_naming_it(env: TestEnv, restricted: dict[str, str],
                                                   privilege: str, blocked: str) -> None:
    _revoke(env.target, env.database, restricted["production"], privilege)
    result = env.run("doctor", "--env", "production", "--json")
    assert result.exit_code == 1, result.stdout
    checks = {c["name"]: c for c in json.loads(result.stdout)["checks"]}
    detail = checks["privileges"]["detail"]
    assert f"missing {privilege} (blocks:" in detail and blocked in detail
    assert checks["privileges"]["hint"].startswith(f"GRANT {privilege} ON")


def test_privileges_through_a_default_role_count(env: TestEnv,
                                                 restricted: dict[str, str]) -> None:
    user = restricted["production"]
    role = f"r_{env.database[-6:]}"
    _revoke(env.target, env.database, user, "LOCK TABLES")
    env.target.sql(None, f"CREATE ROLE {role}",
                   f"GRANT LOCK TABLES ON `{env.database}`.* TO {role}",
                   f"GRANT {role} TO '{user}'@'%'", f"SET DEFAULT ROLE {role} FOR '{user}'@'%'")
    try:
        result = env.run("doctor", "--env", "production", "--json")
        assert result.exit_code == 0, result.stdout
    finally:
        env.target.sql(None, f"DROP ROLE {role}")
