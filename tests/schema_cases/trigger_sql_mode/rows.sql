INSERT INTO t VALUES (1,'a','b','ab');
