INSERT INTO t VALUES (1,'hello','world');
