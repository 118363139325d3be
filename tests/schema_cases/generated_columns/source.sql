CREATE TABLE t (id INT PRIMARY KEY, price DECIMAL(10,2), qty INT, total DECIMAL(12,2) AS (price * qty) STORED,
  label VARCHAR(50) AS (CONCAT('#', id)) VIRTUAL, doubled INT AS (qty * 2) VIRTUAL, KEY ix_total (total));
