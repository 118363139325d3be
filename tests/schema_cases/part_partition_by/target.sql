CREATE TABLE orders (id INT NOT NULL, placed DATETIME NOT NULL, total DECIMAL(10,2), PRIMARY KEY (id, placed));
