CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(50), UNIQUE KEY u_email (email));
