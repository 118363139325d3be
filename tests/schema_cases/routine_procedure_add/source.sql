CREATE TABLE accounts (id INT PRIMARY KEY, balance DECIMAL(10,2) NOT NULL DEFAULT 0);
DELIMITER $$
CREATE PROCEDURE credit(IN p_id INT, IN p_amount DECIMAL(10,2), OUT p_new DECIMAL(10,2))
  MODIFIES SQL DATA COMMENT 'adds money; it''s atomic'
BEGIN
  UPDATE accounts SET balance = balance + p_amount WHERE id = p_id;
  SELECT balance INTO p_new FROM accounts WHERE id = p_id;
END$$
DELIMITER ;
