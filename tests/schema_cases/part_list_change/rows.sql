INSERT INTO stores VALUES (1, 1, 'a'), (2, 3, 'b'), (3, 5, 'c');
