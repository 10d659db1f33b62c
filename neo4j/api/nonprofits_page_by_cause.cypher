// A page of the nonprofits working on any of $cause_ids (keyset pagination by id), filtered by
// regions and name text; null filters match all. It starts from the causes, so only their
// nonprofits are read, not the whole catalog.
MATCH (c:Cause)<-[:WORKS_ON]-(n:Nonprofit)
WHERE c.id IN $cause_ids
  AND n.id > $after
  AND ($text IS NULL OR toLower(n.name) CONTAINS toLower($text))
WITH DISTINCT n
WITH n, [(n)-[:LOCATED_IN]->(r:Region) | r.id] AS regions
WHERE $region_ids IS NULL OR any(id IN regions WHERE id IN $region_ids)
RETURN n.id AS id
ORDER BY id
LIMIT $limit
