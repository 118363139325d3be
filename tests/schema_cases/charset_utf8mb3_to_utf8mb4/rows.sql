INSERT INTO t VALUES (1,'ok','name','abc'),(2,NULL,NULL,NULL);
