// Every nonprofit id passing the match filters (causes, regions); null filters match all.
MATCH (n:Nonprofit)
WITH n,
  [(n)-[:WORKS_ON]->(c:Cause) | c.id] AS causes,
  [(n)-[:LOCATED_IN]->(r:Region) | r.id] AS regions
WHERE ($cause_ids IS NULL OR any(id IN causes WHERE id IN $cause_ids))
  AND ($region_ids IS NULL OR any(id IN regions WHERE id IN $region_ids))
RETURN n.id AS id
