CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(200), b TEXT, KEY ix_a (a(10)), KEY ix_b (b(20)));
