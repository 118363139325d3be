INSERT INTO t VALUES (1,'x',10),(2,'y',3);
