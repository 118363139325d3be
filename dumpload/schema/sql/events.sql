-- Events of one schema.
SELECT *
FROM information_schema.EVENTS
WHERE EVENT_SCHEMA = %s
