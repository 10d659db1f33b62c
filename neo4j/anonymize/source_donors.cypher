// Only the quasi-identifiers of a page of donors (keyset paging by id): never names, e-mails,
// phones or streets. `first_ts` is the donor's first donation.
MATCH (d:Donor)
WHERE d.id > $after
WITH d ORDER BY d.id LIMIT $limit
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
OPTIONAL MATCH (d)-[g:DONATED]->(:Nonprofit)
RETURN d.id AS id, d.zip AS zip, d.donor_type AS donor_type, r.id AS region_id,
  min(g.ts) AS first_ts
ORDER BY id
