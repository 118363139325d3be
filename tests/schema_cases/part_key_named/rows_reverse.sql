INSERT INTO users VALUES (1, 'a@x'), (2, NULL), (3, 'c@x'), (4, 'd@x');
