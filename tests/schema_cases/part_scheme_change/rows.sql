INSERT INTO metrics VALUES (1, 1, 1), (2, 50, NULL), (3, 9, 3);
