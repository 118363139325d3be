CREATE TABLE prices (country CHAR(2) NOT NULL, tier INT NOT NULL, amount DECIMAL(10,2))
  PARTITION BY LIST COLUMNS (country, tier) (PARTITION eu VALUES IN (('FR', 1), ('DE', 1), ('FR', 2)),
  PARTITION us VALUES IN (('US', 1), ('US', 2)));
