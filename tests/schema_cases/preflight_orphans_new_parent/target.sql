CREATE TABLE c (id INT PRIMARY KEY, p_id INT, KEY fk_c_p (p_id));
