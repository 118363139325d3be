CREATE TABLE customers (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, email VARCHAR(255) NOT NULL, name VARCHAR(100),
  country CHAR(2) NOT NULL DEFAULT 'FR', created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP, UNIQUE KEY uk_email (email), KEY ix_country (country, name))
  COMMENT='people';
CREATE TABLE orders (id INT UNSIGNED AUTO_INCREMENT PRIMARY KEY, customer_id INT UNSIGNED NOT NULL, total DECIMAL(12,2) NOT NULL DEFAULT 0,
  status ENUM('new','paid','shipped','cancelled') NOT NULL DEFAULT 'new', note TEXT,
  KEY ix_status (status), CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id) ON DELETE CASCADE);
CREATE TABLE products (sku VARCHAR(32) PRIMARY KEY, title VARCHAR(200) NOT NULL);
CREATE VIEW paid_orders AS SELECT o.id, c.email, o.total FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'paid';
CREATE TRIGGER orders_bi BEFORE INSERT ON orders FOR EACH ROW SET NEW.total = GREATEST(NEW.total, 0);
