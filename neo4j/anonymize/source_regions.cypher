MATCH (r:Region)
RETURN r.id AS id, r.name AS name, r.lat AS lat, r.lon AS lon
ORDER BY id SKIP $skip LIMIT $limit
