// Donations already stored under these ids, with their endpoints (id conflicts of a load).
UNWIND $ids AS id
MATCH (d:Donor)-[g:DONATED {id: id}]->(n:Nonprofit)
RETURN g.id AS id, d.id AS donor_id, n.id AS nonprofit_id
