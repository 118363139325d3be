INSERT INTO tickets VALUES (1, 0), (2, 9), (3, 5), (4, 9);
