INSERT INTO t (id, s, legacy) VALUES (1,'new',0),(2,'wip',0),(3,'done',0);
