INSERT INTO t VALUES (1,'café'),(2,'snow ☃ man'),(3,NULL);
