INSERT INTO customers (id, name, email, legacy_flag) VALUES (1, 'Ann', 'ann@example.com', 1), (2, 'Bob', 'bob@example.com', NULL);
INSERT INTO orders VALUES (1, 1, 10.50, 'paid'), (2, 2, 3.00, 'new');
