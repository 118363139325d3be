INSERT INTO people VALUES (1, 'Ada', 'Lovelace'), (2, NULL, 'X');
