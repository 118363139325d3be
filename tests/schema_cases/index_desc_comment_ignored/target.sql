CREATE TABLE t (id INT PRIMARY KEY, a VARCHAR(20), b INT, KEY ix (a, b), KEY iy (b));
