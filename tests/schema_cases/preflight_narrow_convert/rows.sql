INSERT INTO t VALUES (1,'short','ab'),(2,'much too long','abcdef'),(3,NULL,NULL);
