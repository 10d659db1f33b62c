// A donor lives in exactly one region: a moved donor loses the old LIVES_IN.
UNWIND $rows AS row
MERGE (d:Donor {id: row.id})
SET d.name = row.name
WITH d, row
OPTIONAL MATCH (d)-[old:LIVES_IN]->(previous:Region)
WHERE previous.id <> row.region_id
DELETE old
WITH DISTINCT d, row
MATCH (r:Region {id: row.region_id})
MERGE (d)-[:LIVES_IN]->(r)
RETURN count(d) AS written
