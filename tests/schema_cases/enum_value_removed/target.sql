CREATE TABLE t (id INT PRIMARY KEY, e ENUM('a','b','c'));
