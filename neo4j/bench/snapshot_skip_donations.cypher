// The snapshot export's donations page before keyset paging (bench/snapshot_export.py only):
// every page sorts every donation to skip $skip of them.
MATCH (d:Donor)-[g:DONATED]->(n:Nonprofit)
RETURN g.id AS id, d.id AS donor_id, n.id AS nonprofit_id, g.amount AS amount, g.ts AS ts
ORDER BY id SKIP $skip LIMIT $limit
