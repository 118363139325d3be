INSERT INTO readings VALUES (1, 1, 0.5), (999, 2, 1.25), (1000, 3, NULL), (2500, 1, -3e10), (99999, 2, 7);
