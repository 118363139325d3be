"""Wire compression on the ordinary (loopback) test servers: `auto` stays off there,
`compress: on` compresses every native client, copies stay exact, and the report says
what crossed the wire. The shaped-link versions are in test_network_link.py."""

from __future__ import annotations

import json

from tests.support import TestEnv, make_config, schema_digest


def configure(env: TestEnv, source: str, target: str) -> None:
    doc = make_config(env.servers, env.database)
    doc["databases"]["development"]["compress"] = source
    doc["databases"]["production"]["compress"] = target
    env.config_path.write_text(json.dumps(doc, indent=2))


def spawned(env: TestEnv) -> list[str]:
    return [line.split("spawn ", 1)[1] for log in sorted((env.folder / "logs").glob(
        "replicator_*.log")) for line in log.read_text().splitlines() if " spawn " in line]


def seed(env: TestEnv) -> None:
    ddl = "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(80), body TEXT, price DECIMAL(9,2))"
    env.src(ddl, "INSERT INTO items SELECT seq, CONCAT('item ', seq % 50), REPEAT('lorem ipsum ', "
            "1 + seq % 20), seq / 7 FROM seq_1_to_5000")
    env.dst(ddl, "INSERT INTO items VALUES (1, 'old', NULL, 1)")


def table_entry(stdout: str) -> dict:
    return next(t for t in json.loads(stdout)["tables"] if t["table"] == "items")


def test_auto_on_loopback_does_not_compress_and_reports_the_wire(env: TestEnv) -> None:
    seed(env)
    result = env.run("data", "--yes", "--json", "--no-backup")
    assert result.exit_code == 0, result.output
    items = table_entry(result.stdout)
    assert not any("--compress" in c for c in spawned(env))
    assert items["target_wire_bytes"] >= items["bytes"] > 0
    assert items["source_wire_bytes"] >= 0.9 * items["bytes"]
    assert items["compression_ratio"] <= 1
    assert schema_digest(env.source, env.database) == schema_digest(env.target, env.database)


def test_compress_on_applies_to_copy_export_and_import(env: TestEnv) -> None:
    seed(env)
    configure(env, "on", "on")
    result = env.run("data", "--yes", "--json", "--no-backup")
    assert result.exit_code == 0, result.output
    items = table_entry(result.stdout)
    assert items["target_wire_bytes"] < items["bytes"] / 2
    assert items["source_wire_bytes"] < items["bytes"] / 2
    assert schema_digest(env.source, env.database) == schema_digest(env.target, env.database)

    env.dst("DELETE FROM items WHERE id > 100")
    out = env.folder / "export"
    assert env.run("export", "--env", "development", "--out", str(out)).exit_code == 0
    imported = env.run("import", str(out), "--env", "production", "--yes")
    assert imported.exit_code == 0, imported.output
    assert schema_digest(env.source, env.database) == schema_digest(env.target, env.database)
    clients = spawned(env)
    assert [c for c in clients if c.startswith("load of")]
    assert [c for c in clients if c.startswith("source reader")]
    assert all("--compress" in c for c in clients if c.startswith(("load of", "source reader")))


def test_doctor_says_what_the_wire_will_carry(env: TestEnv) -> None:
    configure(env, "auto", "on")
    result = env.run("doctor", "--env", "production")
    assert result.exit_code == 0, result.output
    assert "wire compression" in result.output and "--compress" in result.output
    configure(env, "off", "auto")
    result = env.run("doctor", "--env", "production")
    assert "uncompressed" in result.output and "--compress" not in result.output


AWKWARD = ("CREATE TABLE odd (id INT PRIMARY KEY, s VARCHAR(60), b VARBINARY(40), t TEXT, "
           "KEY k_s (s))")


def test_restore_exact_through_sessions_and_through_the_compressing_client(
        env: TestEnv) -> None:
    """`auto` on loopback: the rows go as statements over sessions; `compress: on`: through
    the client with --compress. Both leave the same, exact table: values holding ';',
    newlines, '--', quotes, backslashes and NUL bytes included."""
    env.dst(AWKWARD, "INSERT INTO odd SELECT seq, CONCAT('v;', CHAR(10), '-- ', seq, ';'), "
            "CONCAT(CHAR(0), ';', CHAR(10), CHAR(13), 'x'), CONCAT('it''s \\\\ ', "
            "REPEAT('w', seq % 300), ';\\n') FROM seq_1_to_3000")
    wanted = schema_digest(env.target, env.database)
    created = env.run("backup", "create", "--env", "production", "--json")
    assert created.exit_code == 0, created.output
    backup_id = json.loads(created.stdout)["id"]
    for compress in ("auto", "on"):
        configure(env, "auto", compress)
        env.dst("UPDATE odd SET s = 'changed', b = NULL", "DELETE FROM odd WHERE id > 2000")
        restored = env.run("backup", "restore", backup_id, "--env", "production", "--yes",
                           "--no-backup")
        assert restored.exit_code == 0, restored.output
        assert schema_digest(env.target, env.database) == wanted, compress
        loaders = [c for c in spawned(env) if "loading _dl_shadow_odd" in c]
        assert bool(loaders) == (compress == "on")
        assert all("--compress" in c for c in loaders)
