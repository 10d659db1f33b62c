MATCH (n:Nonprofit)-[:WORKS_ON]->(c:Cause)
RETURN n.id AS nonprofit_id, c.id AS cause_id
ORDER BY nonprofit_id, cause_id SKIP $skip LIMIT $limit
