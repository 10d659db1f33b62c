// A nonprofit is located in at most one region: a moved one loses the old LOCATED_IN.
// `changed` covers the properties and the region; `load_id` moves only when one changes.
UNWIND $rows AS row
MERGE (n:Nonprofit {id: row.id})
WITH n, row
OPTIONAL MATCH (n)-[:LOCATED_IN]->(current:Region)
WITH n, row, collect(current.id) AS regions
WITH n, row, n.load_id IS NULL
  OR regions <> CASE WHEN row.region_id IS NULL THEN [] ELSE [row.region_id] END
  OR NOT (coalesce(n.name = row.name, n.name IS NULL AND row.name IS NULL)
    AND coalesce(n.ein = row.ein, n.ein IS NULL AND row.ein IS NULL)
    AND coalesce(n.street = row.street, n.street IS NULL AND row.street IS NULL)
    AND coalesce(n.city = row.city, n.city IS NULL AND row.city IS NULL)
    AND coalesce(n.state = row.state, n.state IS NULL AND row.state IS NULL)
    AND coalesce(n.zip = row.zip, n.zip IS NULL AND row.zip IS NULL)
    AND coalesce(n.ntee_code = row.ntee_code, n.ntee_code IS NULL AND row.ntee_code IS NULL)
  ) AS changed
SET n.name = row.name, n.ein = row.ein, n.street = row.street, n.city = row.city,
  n.state = row.state, n.zip = row.zip, n.ntee_code = row.ntee_code,
  n.load_id = CASE WHEN changed THEN $load_id ELSE n.load_id END
WITH n, row, changed
OPTIONAL MATCH (n)-[old:LOCATED_IN]->(previous:Region)
WHERE row.region_id IS NULL OR previous.id <> row.region_id
DELETE old
WITH DISTINCT n, row, changed
OPTIONAL MATCH (r:Region {id: row.region_id})
FOREACH (region IN CASE WHEN r IS NULL THEN [] ELSE [r] END |
  MERGE (n)-[located:LOCATED_IN]->(region)
  ON CREATE SET located.load_id = $load_id)
RETURN count(n) AS written, count(CASE WHEN changed THEN 1 END) AS changed
