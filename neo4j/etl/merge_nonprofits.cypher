// A nonprofit is located in exactly one region: a moved one loses the old LOCATED_IN.
UNWIND $rows AS row
MERGE (n:Nonprofit {id: row.id})
SET n.name = row.name
WITH n, row
OPTIONAL MATCH (n)-[old:LOCATED_IN]->(previous:Region)
WHERE previous.id <> row.region_id
DELETE old
WITH DISTINCT n, row
MATCH (r:Region {id: row.region_id})
MERGE (n)-[:LOCATED_IN]->(r)
RETURN count(n) AS written
