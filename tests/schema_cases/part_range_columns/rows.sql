INSERT INTO logs VALUES ('2023-12-31', 'web1', 'x'), ('2024-01-01', 'a', 'y'), ('2024-11-11', 'zz', NULL);
