MATCH (n:Nonprofit)
OPTIONAL MATCH (n)-[:LOCATED_IN]->(r:Region)
RETURN n.id AS id, n.name AS name, r.id AS region_id
ORDER BY id SKIP $skip LIMIT $limit
