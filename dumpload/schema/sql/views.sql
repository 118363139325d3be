-- Views of one schema (ALGORITHM exists on MariaDB only).
SELECT *
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = %s
