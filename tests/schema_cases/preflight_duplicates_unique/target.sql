CREATE TABLE t (id INT PRIMARY KEY, email VARCHAR(50), KEY u_email (email));
