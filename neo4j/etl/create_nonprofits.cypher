// `etl load --initial`: nonprofits into an empty graph (see create_donors.cypher).
UNWIND $rows AS row
CREATE (n:Nonprofit {id: row.id, name: row.name, ein: row.ein, street: row.street,
  city: row.city, state: row.state, zip: row.zip, ntee_code: row.ntee_code,
  load_id: $load_id})
WITH n, row
OPTIONAL MATCH (r:Region {id: row.region_id})
FOREACH (region IN CASE WHEN r IS NULL THEN [] ELSE [r] END |
  CREATE (n)-[:LOCATED_IN {load_id: $load_id}]->(region))
RETURN count(n) AS written, count(n) AS changed
