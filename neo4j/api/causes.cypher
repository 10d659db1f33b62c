MATCH (c:Cause)
RETURN c.id AS id, c.name AS name
ORDER BY name, id
