MATCH (i:Initiative)-[:WORKS_ON]->(c:Cause)
RETURN i.id AS initiative_id, c.id AS cause_id
ORDER BY initiative_id, cause_id SKIP $skip LIMIT $limit
