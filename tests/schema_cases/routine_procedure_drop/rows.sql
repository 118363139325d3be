INSERT INTO log (msg) VALUES ('one'), (NULL);
