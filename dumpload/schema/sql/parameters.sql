-- Parameters (ORDINAL_POSITION 0: a function's return type) of one schema's routines.
SELECT *
FROM information_schema.PARAMETERS
WHERE SPECIFIC_SCHEMA = %s
