MATCH (i:Initiative)-[:INITIATIVE_OF]->(n:Nonprofit)
RETURN i.id AS id, i.name AS name, n.id AS nonprofit_id, i.posted_ts AS posted_ts
ORDER BY id SKIP $skip LIMIT $limit
