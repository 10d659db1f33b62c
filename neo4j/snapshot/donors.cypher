// Keyset pages: the next $limit donors after the id $after, which Neo4j reads in the order of
// the donor_id constraint's index (see etl/snapshot.py).
MATCH (d:Donor)
WHERE d.id > $after
WITH d ORDER BY d.id LIMIT $limit
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
RETURN d.id AS id, d.name AS name, r.id AS region_id
