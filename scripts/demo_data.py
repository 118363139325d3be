#!/usr/bin/env python3
"""Build the demo's "development" shop database and a drifted "production" copy.

Development: a dozen tables with foreign keys, a view, a trigger and ~600k rows.
Production: the same shop a few releases behind — a missing column, an old index, a
missing table, stale reference data and rows that drifted. Both are (re)created from
scratch; MariaDB's sequence engine (`seq_1_to_N`) generates the rows server-side.

Usage: demo_data.py --source-port P --target-port Q [--host H] [--database shop]
"""

from __future__ import annotations

import argparse
import time

import pymysql

SCHEMA = """
CREATE TABLE countries (
  id SMALLINT UNSIGNED NOT NULL PRIMARY KEY,
  code CHAR(2) NOT NULL UNIQUE,
  name VARCHAR(80) NOT NULL
);
CREATE TABLE currencies (
  code CHAR(3) NOT NULL PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  decimals TINYINT UNSIGNED NOT NULL DEFAULT 2
);
CREATE TABLE plans (
  id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  name VARCHAR(40) NOT NULL,
  monthly_price DECIMAL(10,2) NOT NULL,
  currency CHAR(3) NOT NULL,
  features JSON NULL,
  CONSTRAINT fk_plans_currency FOREIGN KEY (currency) REFERENCES currencies (code)
);
CREATE TABLE settings_general (
  name VARCHAR(64) NOT NULL PRIMARY KEY,
  value TEXT NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP ON UPDATE CURRENT_TIMESTAMP
);
CREATE TABLE settings_mail LIKE settings_general;
CREATE TABLE categories (
  id INT NOT NULL PRIMARY KEY,
  parent_id INT NULL,
  name VARCHAR(100) NOT NULL,
  KEY idx_parent (parent_id),
  CONSTRAINT fk_categories_parent FOREIGN KEY (parent_id) REFERENCES categories (id)
);
CREATE TABLE products (
  id INT NOT NULL PRIMARY KEY,
  sku VARCHAR(32) NOT NULL,
  name VARCHAR(200) NOT NULL,
  category_id INT NOT NULL,
  price DECIMAL(12,2) NOT NULL,
  weight_grams INT UNSIGNED NULL,
  active TINYINT(1) NOT NULL DEFAULT 1,
  UNIQUE KEY uq_sku (sku),
  KEY idx_category_price (category_id, price),
  CONSTRAINT fk_products_category FOREIGN KEY (category_id) REFERENCES categories (id)
);
CREATE TABLE customers (
  id INT NOT NULL PRIMARY KEY,
  email VARCHAR(190) NOT NULL,
  full_name VARCHAR(120) NOT NULL,
  phone VARCHAR(32) NULL,
  country_id SMALLINT UNSIGNED NOT NULL,
  created_at DATETIME(3) NOT NULL,
  UNIQUE KEY uq_email (email),
  KEY idx_country (country_id),
  CONSTRAINT fk_customers_country FOREIGN KEY (country_id) REFERENCES countries (id)
);
CREATE TABLE addresses (
  id INT NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  line1 VARCHAR(200) NOT NULL,
  city VARCHAR(100) NOT NULL,
  postcode VARCHAR(16) NULL,
  KEY idx_customer (customer_id),
  CONSTRAINT fk_addresses_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
    ON DELETE CASCADE
);
CREATE TABLE orders (
  id INT NOT NULL PRIMARY KEY,
  customer_id INT NOT NULL,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new',
  total DECIMAL(12,2) NOT NULL,
  note VARCHAR(255) NULL,
  created_at DATETIME NOT NULL,
  KEY idx_customer_created (customer_id, created_at),
  KEY idx_status (status),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
);
CREATE TABLE order_items (
  order_id INT NOT NULL,
  line_no SMALLINT NOT NULL,
  product_id INT NOT NULL,
  quantity INT NOT NULL,
  unit_price DECIMAL(12,2) NOT NULL,
  PRIMARY KEY (order_id, line_no),
  KEY idx_product (product_id),
  CONSTRAINT fk_items_order FOREIGN KEY (order_id) REFERENCES orders (id) ON DELETE CASCADE,
  CONSTRAINT fk_items_product FOREIGN KEY (product_id) REFERENCES products (id)
);
CREATE TABLE payments (
  id INT NOT NULL PRIMARY KEY,
  order_id INT NOT NULL,
  amount DECIMAL(12,2) NOT NULL,
  method ENUM('card','transfer','voucher') NOT NULL,
  paid_at TIMESTAMP NULL,
  KEY idx_order (order_id),
  CONSTRAINT fk_payments_order FOREIGN KEY (order_id) REFERENCES orders (id)
);
CREATE TABLE audit_log (
  id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  order_id INT NOT NULL,
  old_status VARCHAR(16) NULL,
  new_status VARCHAR(16) NULL,
  changed_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE sessions (
  id CHAR(32) NOT NULL PRIMARY KEY,
  customer_id INT NULL,
  payload BLOB NULL
);
CREATE VIEW v_order_totals AS
  SELECT o.customer_id, COUNT(*) AS orders, SUM(o.total) AS total
  FROM orders o GROUP BY o.customer_id;
CREATE TRIGGER trg_orders_status AFTER UPDATE ON orders FOR EACH ROW
  INSERT INTO audit_log (order_id, old_status, new_status)
  SELECT NEW.id, OLD.status, NEW.status FROM DUAL WHERE NOT (OLD.status <=> NEW.status);
"""

ROWS = """
INSERT INTO countries SELECT seq, CONCAT(CHAR(65 + seq DIV 26 % 26), CHAR(65 + seq % 26)),
  CONCAT('Country ', seq) FROM seq_1_to_250;
INSERT INTO currencies VALUES ('EUR','Euro',2),('USD','US dollar',2),('JPY','Yen',0),
  ('GBP','Pound sterling',2);
INSERT INTO plans (name, monthly_price, currency, features) VALUES
  ('free', 0, 'EUR', '{"seats": 1}'), ('team', 29.00, 'EUR', '{"seats": 10, "sso": false}'),
  ('business', 99.00, 'USD', '{"seats": 50, "sso": true}'),
  ('enterprise', 499.00, 'USD', '{"seats": null, "sso": true, "sla": "99.9"}');
INSERT INTO settings_general (name, value) VALUES ('site_name', 'Demo shop'),
  ('maintenance', 'off'), ('tagline', 'Tabs\tand "quotes" and \\\\backslashes'),
  ('empty', ''), ('nothing', NULL);
INSERT INTO settings_mail (name, value) VALUES ('smtp_host', 'mail.example.test'),
  ('from', 'Shop <shop@example.test>'), ('footer', 'Multi\nline\nfooter ✓');
INSERT INTO categories SELECT seq, IF(seq <= 10, NULL, 1 + seq % 10), CONCAT('Category ', seq)
  FROM seq_1_to_100;
INSERT INTO products SELECT seq, CONCAT('SKU-', LPAD(seq, 6, '0')), CONCAT('Product #', seq,
  IF(seq % 7 = 0, ' — édition spéciale', '')), 1 + seq % 100,
  ROUND(1 + (seq * 7919) % 50000 / 100, 2), IF(seq % 11 = 0, NULL, seq % 5000),
  seq % 13 <> 0 FROM seq_1_to_5000;
INSERT INTO customers SELECT seq, CONCAT('customer', seq, '@example.test'),
  CONCAT('Customer ', seq), IF(seq % 3 = 0, NULL, CONCAT('+44 20 ', LPAD(seq, 7, '0'))),
  1 + seq % 250, TIMESTAMP'2023-01-01 00:00:00' + INTERVAL seq * 37 SECOND
  + INTERVAL seq % 1000 * 1000 MICROSECOND FROM seq_1_to_50000;
INSERT INTO addresses SELECT seq, 1 + seq % 50000, CONCAT(seq, ' High Street'),
  ELT(1 + seq % 4, 'London', 'Zürich', 'Kraków', 'São Paulo'),
  IF(seq % 9 = 0, NULL, LPAD(seq % 99999, 5, '0')) FROM seq_1_to_60000;
INSERT INTO orders SELECT seq, 1 + (seq * 31) % 50000, ELT(1 + seq % 4, 'new', 'paid',
  'shipped', 'cancelled'), ROUND((seq * 104729) % 100000 / 100, 2),
  IF(seq % 17 = 0, 'leave at the door', NULL),
  TIMESTAMP'2024-01-01 00:00:00' + INTERVAL seq * 5 MINUTE FROM seq_1_to_120000;
INSERT INTO order_items SELECT o.seq, l.seq, 1 + (o.seq * l.seq * 13) % 5000,
  1 + (o.seq + l.seq) % 5, ROUND(1 + (o.seq * 7 + l.seq) % 20000 / 100, 2)
  FROM seq_1_to_120000 o JOIN seq_1_to_2 l;
INSERT INTO payments SELECT seq, seq, ROUND((seq * 104729) % 100000 / 100, 2),
  ELT(1 + seq % 3, 'card', 'transfer', 'voucher'),
  TIMESTAMP'2024-01-01 00:10:00' + INTERVAL seq * 5 MINUTE FROM seq_1_to_90000;
INSERT INTO sessions SELECT MD5(seq), seq, UNHEX(MD5(seq)) FROM seq_1_to_1000;
"""

# Production is a few releases behind, and its data drifted.
DRIFT = """
ALTER TABLE customers DROP COLUMN phone;
ALTER TABLE products ADD KEY idx_old_name (name), DROP KEY idx_category_price,
  ADD KEY idx_category (category_id), MODIFY name VARCHAR(150) NOT NULL;
DROP TABLE payments;
UPDATE plans SET monthly_price = monthly_price - 5 WHERE monthly_price > 10;
UPDATE countries SET name = CONCAT('Old ', name) WHERE id > 240;
UPDATE settings_general SET value = 'on' WHERE name = 'maintenance';
DELETE FROM settings_mail WHERE name = 'footer';
UPDATE orders SET status = 'cancelled' WHERE id % 1000 = 0;
DELETE FROM order_items WHERE order_id > 118000;
INSERT INTO sessions SELECT MD5(seq + 5000), seq, NULL FROM seq_1_to_500;
"""


def run_script(conn: pymysql.connections.Connection, script: str) -> None:
    """Statements separated by ';' at line ends (the trigger body has no inner ';')."""
    with conn.cursor() as cur:
        for stmt in script.split(";\n"):
            if stmt.strip():
                cur.execute(stmt)


def build(host: str, port: int, database: str, drift: bool) -> None:
    conn = pymysql.connect(host=host, port=port, user="root", password="", autocommit=True,
                           charset="utf8mb4")
    try:
        run_script(conn, f"DROP DATABASE IF EXISTS `{database}`;\n"
                         f"CREATE DATABASE `{database}`;\nUSE `{database}`;\n"
                         "SET time_zone = '+00:00';\n")
        run_script(conn, SCHEMA)
        run_script(conn, ROWS)
        if drift:
            run_script(conn, DRIFT)
    finally:
        conn.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--source-port", type=int, required=True)
    parser.add_argument("--target-port", type=int, required=True)
    parser.add_argument("--database", default="shop")
    args = parser.parse_args()
    for role, port, drift in (("development", args.source_port, False),
                              ("production", args.target_port, True)):
        started = time.monotonic()
        build(args.host, port, args.database, drift)
        print(f"demo: {role} database {args.database!r} on port {port} ready "
              f"({time.monotonic() - started:.1f} s)")


if __name__ == "__main__":
    main()
