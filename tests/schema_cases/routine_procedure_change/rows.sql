INSERT INTO items VALUES (1, 'apple'), (2, 'apricot');
