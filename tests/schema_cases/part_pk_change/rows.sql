INSERT INTO accounts VALUES (1, 1, 100), (2, 2, NULL), (3, 3, -5);
