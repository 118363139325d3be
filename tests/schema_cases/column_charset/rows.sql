INSERT INTO t VALUES (1,'abc','def','ghi');
