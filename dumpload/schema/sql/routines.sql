-- Stored procedures and functions of one schema (the column set differs by flavor).
SELECT *
FROM information_schema.ROUTINES
WHERE ROUTINE_SCHEMA = %s
