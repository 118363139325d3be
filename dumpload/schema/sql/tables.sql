-- Tables and views of one schema, with the table options the diff compares.
SELECT TABLE_NAME, TABLE_TYPE, ENGINE, TABLE_COLLATION, CREATE_OPTIONS, TABLE_COMMENT
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s
