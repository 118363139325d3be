CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(200), b TEXT, KEY ix_a (a), KEY ix_b (b(5)));
