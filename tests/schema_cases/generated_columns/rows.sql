INSERT INTO t (id, price, qty) VALUES (1, 2.50, 4);
