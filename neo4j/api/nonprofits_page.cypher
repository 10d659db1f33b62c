// A page of nonprofits by id (keyset pagination), filtered by causes, regions and name text.
// Null filters match everything.
MATCH (n:Nonprofit)
WHERE n.id > $after
  AND ($text IS NULL OR toLower(n.name) CONTAINS toLower($text))
WITH n,
  [(n)-[:WORKS_ON]->(c:Cause) | c.id] AS causes,
  [(n)-[:LOCATED_IN]->(r:Region) | r.id] AS regions
WHERE ($cause_ids IS NULL OR any(id IN causes WHERE id IN $cause_ids))
  AND ($region_ids IS NULL OR any(id IN regions WHERE id IN $region_ids))
RETURN n.id AS id
ORDER BY id
LIMIT $limit
