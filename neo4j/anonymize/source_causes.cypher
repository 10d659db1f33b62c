MATCH (c:Cause)
OPTIONAL MATCH (c)-[:PART_OF]->(p:Cause)
RETURN c.id AS id, c.name AS name, p.id AS parent_id
ORDER BY id SKIP $skip LIMIT $limit
