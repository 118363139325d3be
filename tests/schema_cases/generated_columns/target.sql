CREATE TABLE t (id INT PRIMARY KEY, price DECIMAL(10,2), qty INT, total DECIMAL(12,2) AS (price + qty) STORED,
  doubled INT AS (qty * 2) STORED, KEY ix_total (total));
