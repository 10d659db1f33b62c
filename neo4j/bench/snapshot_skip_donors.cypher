// The snapshot export's donors page before keyset paging (bench/snapshot_export.py only).
MATCH (d:Donor)
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
RETURN d.id AS id, d.name AS name, r.id AS region_id
ORDER BY id SKIP $skip LIMIT $limit
