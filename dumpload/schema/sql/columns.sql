-- Every column of one schema in one query (SELECT *: the column set differs by flavor).
SELECT *
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s
ORDER BY TABLE_NAME, ORDINAL_POSITION
