// Whether the analyst graph holds anything: an empty answer to an analyst's query on a graph the
// anonymize job never built should say so, not look like "no rows".
MATCH (n)
RETURN 1 AS present
LIMIT 1
