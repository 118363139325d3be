INSERT INTO prices VALUES ('FR', 1, 9.99), ('DE', 1, NULL), ('FR', 1, 1.00);
