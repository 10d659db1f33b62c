// Create or replace a nonprofit's own profile: name, description, funding need (stamped, see
// api/set_funding_need), region.
MERGE (n:Nonprofit {id: $id})
SET n.name = $name, n.description = $description, n.funding_need = $funding_need,
    n.need_changed_at = timestamp()
WITH n
OPTIONAL MATCH (n)-[old:LOCATED_IN]->(:Region)
DELETE old
WITH DISTINCT n
MATCH (r:Region {id: $region_id})
MERGE (n)-[:LOCATED_IN]->(r)
RETURN count(r) AS written
