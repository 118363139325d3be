INSERT INTO t VALUES (1,'Abc','Déf');
