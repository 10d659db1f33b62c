// Keyset pages: the next $limit causes after the id $after (see etl/snapshot.py).
MATCH (c:Cause)
WHERE c.id > $after
WITH c ORDER BY c.id LIMIT $limit
RETURN c.id AS id, c.name AS name
