INSERT INTO t VALUES (1,'12','2024-01-02','a'),(2,'many','soon','c'),(3,NULL,NULL,NULL);
