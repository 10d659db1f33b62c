MATCH (r:Region)
RETURN r.id AS id, r.name AS name
ORDER BY name, id
