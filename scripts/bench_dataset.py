"""Build the benchmark dataset on a (sandbox) source server, fast, with the SEQUENCE engine.

    python scripts/bench_dataset.py --host 127.0.0.1 --port 3307 [--database bench] [--rows N]

Importable: `build(host, port, database, rows=2_000_000, user="root", password="")`
returns `{table: row_count}`; `TABLES` names what it creates. The tables:

- `orders`: `rows` rows (default 2 M) of mixed types (BIGINT key, INT, DATETIME(6),
  TIMESTAMP, DECIMAL, DOUBLE, ENUM, VARCHAR, TEXT, VARBINARY, nullable columns) with three
  secondary indexes; about 450-500 MB of InnoDB data + indexes.
- `customers` (100 k rows, one unique secondary index), `products` (20 k rows, string key),
  `events_log` (50 k rows, no primary key, duplicate rows).

Rows are generated server-side from `seq_1_to_N` (MariaDB's sequence engine), so building
2 M rows takes tens of seconds, not minutes. Values are deterministic.
"""

from __future__ import annotations

import argparse
import time

import pymysql

TABLES = ("orders", "customers", "products", "events_log")

_DDL = {
    "orders": """
CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  created_at DATETIME(6) NOT NULL,
  updated_at TIMESTAMP NULL,
  amount DECIMAL(12,2) NOT NULL,
  score DOUBLE,
  status ENUM('new','paid','shipped','cancelled') NOT NULL,
  email VARCHAR(128) NOT NULL,
  title VARCHAR(200),
  note TEXT,
  token VARBINARY(32),
  KEY ix_customer (customer_id),
  KEY ix_created (created_at),
  KEY ix_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "customers": """
CREATE TABLE customers (
  id INT NOT NULL PRIMARY KEY,
  name VARCHAR(100) NOT NULL,
  email VARCHAR(128) NOT NULL,
  country CHAR(2) NOT NULL,
  born DATE,
  UNIQUE KEY ux_email (email)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "products": """
CREATE TABLE products (
  sku VARCHAR(32) NOT NULL PRIMARY KEY,
  name VARCHAR(200) NOT NULL,
  price DECIMAL(10,2) NOT NULL,
  weight FLOAT,
  description TEXT
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
    "events_log": """
CREATE TABLE events_log (
  kind VARCHAR(20) NOT NULL,
  at DATETIME NOT NULL,
  detail VARCHAR(255)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4""",
}

_FILL = {
    "orders": """
INSERT INTO orders
SELECT seq, 1 + (seq * 7919) % 100000,
  TIMESTAMP'2020-01-01 00:00:00' + INTERVAL (seq * 37) SECOND
    + INTERVAL (seq % 1000000) MICROSECOND,
  IF(seq % 5 = 0, NULL, TIMESTAMP'2021-01-01 00:00:00' + INTERVAL seq SECOND),
  ROUND((seq * 13) % 100000 / 7, 2),
  IF(seq % 11 = 0, NULL, seq / 3.0e0),
  ELT(1 + seq % 4, 'new', 'paid', 'shipped', 'cancelled'),
  CONCAT('user', (seq * 31) % 500000, '@example.', ELT(1 + seq % 3, 'com', 'org', 'net')),
  CONCAT('Order ', seq, ' — ', REPEAT(CHAR(97 + seq % 26), 5 + seq % 20)),
  IF(seq % 7 = 0, NULL, CONCAT(MD5(seq), '\\t', MD5(seq + 1), '\\n',
     REPEAT('lorem ipsum ', 1 + seq % 8))),
  UNHEX(MD5(seq))
FROM seq_1_to_{n}""",
    "customers": """
INSERT INTO customers
SELECT seq, CONCAT('Customer ', seq, IF(seq % 9 = 0, ' Ünïcødé 😀', '')),
  CONCAT('c', seq, '@example.com'), ELT(1 + seq % 5, 'DE', 'FR', 'US', 'JP', 'BR'),
  IF(seq % 13 = 0, NULL, DATE'1950-01-01' + INTERVAL (seq % 20000) DAY)
FROM seq_1_to_100000""",
    "products": """
INSERT INTO products
SELECT CONCAT('SKU-', LPAD(seq, 8, '0')), CONCAT('Product ', seq), (seq % 10000) / 100,
  IF(seq % 3 = 0, NULL, seq / 7), REPEAT(CONCAT('desc ', seq, ' '), 1 + seq % 20)
FROM seq_1_to_20000""",
    "events_log": """
INSERT INTO events_log
SELECT ELT(1 + seq % 3, 'login', 'logout', 'view'),
  TIMESTAMP'2022-06-01 00:00:00' + INTERVAL (seq DIV 2) MINUTE,
  IF(seq % 4 = 0, NULL, CONCAT('detail ', seq DIV 2))
FROM seq_1_to_50000""",
}


def build(host: str, port: int, database: str = "bench", rows: int = 2_000_000,
          user: str = "root", password: str = "") -> dict[str, int]:
    """(Re)create `database` with the benchmark tables; returns {table: row count}."""
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           autocommit=True, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone='+00:00', unique_checks=0, foreign_key_checks=0")
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{database}`")
            counts = {}
            for table in TABLES:
                cur.execute(_DDL[table])
                cur.execute(_FILL[table].format(n=rows))
                cur.execute(f"SELECT COUNT(*) FROM `{table}`")
                counts[table] = int(cur.fetchone()[0])
            cur.execute(f"ANALYZE TABLE {', '.join(TABLES)}")
            cur.fetchall()
    finally:
        conn.close()
    return counts


MANY_DDL = """CREATE TABLE `{name}` (
  id INT NOT NULL PRIMARY KEY,
  code VARCHAR(32) NOT NULL,
  qty INT NULL,
  price DECIMAL(10,2) NULL,
  note VARCHAR(100) NULL,
  KEY ix_code (code)
) ENGINE=InnoDB"""
MANY_FILL = """INSERT INTO `{name}` SELECT seq, CONCAT('c', seq % 97, '-', {i}),
  IF(seq % 7 = 0, NULL, seq * 3), seq / 4, IF(seq % 5 = 0, NULL, CONCAT('note ', seq, ' t{i}'))
FROM seq_1_to_{n}"""


def many_name(i: int) -> str:
    return f"t{i:04d}"


def build_many(host: str, port: int, database: str = "bench_many", tables: int = 1000,
               rows: int = 200, user: str = "root", password: str = "") -> dict[str, int]:
    """(Re)create `database` with `tables` tables of `rows` rows and one secondary index
    each (the many-small-tables workload); returns {"tables": n, "rows": total}."""
    conn = pymysql.connect(host=host, port=port, user=user, password=password,
                           autocommit=True, charset="utf8mb4")
    try:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{database}`")
            cur.execute(f"CREATE DATABASE `{database}` CHARACTER SET utf8mb4")
            cur.execute(f"USE `{database}`")
            for i in range(tables):
                cur.execute(MANY_DDL.format(name=many_name(i)))
                cur.execute(MANY_FILL.format(name=many_name(i), i=i, n=rows))
    finally:
        conn.close()
    return {"tables": tables, "rows": tables * rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="")
    parser.add_argument("--database", default="bench")
    parser.add_argument("--rows", type=int, default=2_000_000)
    args = parser.parse_args()
    start = time.monotonic()
    counts = build(args.host, args.port, args.database, args.rows, args.user, args.password)
    print(f"built {args.database} in {time.monotonic() - start:.1f} s: {counts}")


if __name__ == "__main__":
    main()
