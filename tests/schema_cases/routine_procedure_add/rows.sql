INSERT INTO accounts VALUES (1, 10.00), (2, 0);
