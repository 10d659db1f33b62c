// The donations of a page of donors.
UNWIND $donor_ids AS donor_id
MATCH (d:Donor {id: donor_id})-[g:DONATED]->(n:Nonprofit)
RETURN g.id AS id, d.id AS donor_id, n.id AS nonprofit_id, g.amount AS amount, g.ts AS ts,
  g.initiative_id AS initiative_id, g.recurring AS recurring
ORDER BY id
