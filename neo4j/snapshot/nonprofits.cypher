// Keyset pages: the next $limit nonprofits after the id $after (see etl/snapshot.py).
MATCH (n:Nonprofit)
WHERE n.id > $after
WITH n ORDER BY n.id LIMIT $limit
OPTIONAL MATCH (n)-[:LOCATED_IN]->(r:Region)
RETURN n.id AS id, n.name AS name, r.id AS region_id
