INSERT INTO t VALUES (1,'new'),(2,'wip'),(3,'done');
