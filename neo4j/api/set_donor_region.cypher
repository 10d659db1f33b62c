MATCH (d:Donor {id: $donor_id})
MATCH (r:Region {id: $region_id})
OPTIONAL MATCH (d)-[old:LIVES_IN]->(:Region)
DELETE old
WITH DISTINCT d, r
MERGE (d)-[:LIVES_IN]->(r)
RETURN count(r) AS written
