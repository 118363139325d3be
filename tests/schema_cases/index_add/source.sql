CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20), b INT, KEY ix_a (a), KEY ix_ab (a, b));
