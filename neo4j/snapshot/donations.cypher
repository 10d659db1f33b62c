// The donations of one page of exported donors, each looked up by its unique id: no ordering or
// skipping in the store (etl/snapshot.py sorts the table).
UNWIND $ids AS donor_id
MATCH (d:Donor {id: donor_id})-[g:DONATED]->(n:Nonprofit)
RETURN g.id AS id, d.id AS donor_id, n.id AS nonprofit_id, g.amount AS amount, g.ts AS ts
