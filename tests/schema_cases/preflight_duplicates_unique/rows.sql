INSERT INTO t VALUES (1,'a@x'),(2,'a@x'),(3,'b@x'),(4,NULL),(5,NULL);
