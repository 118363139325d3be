CREATE TABLE t (id INT PRIMARY KEY, s ENUM('new','wip','done'), legacy INT);
