// A page of nonprofits by id (keyset pagination), filtered by name text; null matches all.
// Neo4j reads it in the id index's order and stops at the limit.
MATCH (n:Nonprofit)
WHERE n.id > $after
  AND ($text IS NULL OR toLower(n.name) CONTAINS toLower($text))
RETURN n.id AS id
ORDER BY id
LIMIT $limit
