INSERT INTO t VALUES (1,'b','x,y');
