// Street addresses are not read: the analyst graph never holds one.
MATCH (n:Nonprofit)
OPTIONAL MATCH (n)-[:LOCATED_IN]->(r:Region)
RETURN n.id AS id, n.name AS name, n.ein AS ein, n.city AS city, n.state AS state, n.zip AS zip,
  n.ntee_code AS ntee_code, r.id AS region_id
ORDER BY id SKIP $skip LIMIT $limit
