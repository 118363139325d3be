CREATE TABLE t (id INT PRIMARY KEY, e ENUM('a','b','c','d') NOT NULL DEFAULT 'a', s SET('x','y','z'));
