// `etl load --initial` writes with CREATE, so it starts only on a graph without nodes.
OPTIONAL MATCH (n)
WITH n
LIMIT 1
RETURN n IS NULL AS empty
