// A page of the nonprofits located in any of $region_ids (keyset pagination by id), filtered by
// name text; null matches all. It starts from the regions, so only their nonprofits are read.
MATCH (r:Region)<-[:LOCATED_IN]-(n:Nonprofit)
WHERE r.id IN $region_ids
  AND n.id > $after
  AND ($text IS NULL OR toLower(n.name) CONTAINS toLower($text))
RETURN DISTINCT n.id AS id
ORDER BY id
LIMIT $limit
