CREATE TABLE t (id INT PRIMARY KEY, qty INT, born DATE, kind ENUM('a','b'));
