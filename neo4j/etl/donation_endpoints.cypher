// Donations already stored under these ids, with their endpoints (id conflicts of a load).
UNWIND $ids AS id
// No labels on the ends, so FalkorDB starts from the donation id's index (see record_donation).
MATCH (d)-[g:DONATED {id: id}]->(n)
RETURN g.id AS id, d.id AS donor_id, n.id AS nonprofit_id
