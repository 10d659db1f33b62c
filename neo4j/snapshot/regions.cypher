// Keyset pages: the next $limit regions after the id $after (see etl/snapshot.py).
MATCH (r:Region)
WHERE r.id > $after
WITH r ORDER BY r.id LIMIT $limit
RETURN r.id AS id, r.name AS name, r.lat AS lat, r.lon AS lon
