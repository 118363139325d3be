CREATE TABLE people (id INT PRIMARY KEY, first VARCHAR(30), last VARCHAR(30));
CREATE FUNCTION full_name(f VARCHAR(30), l VARCHAR(30)) RETURNS VARCHAR(40) CHARSET latin1
  RETURN CONCAT(f, l);
CREATE VIEW named AS SELECT id, full_name(first, last) AS name FROM people;
