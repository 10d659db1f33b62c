// `etl load --initial`: donations into an empty graph (see create_donors.cypher). Rows whose
// donor or nonprofit is unknown match nothing, as in merge_donations.cypher.
UNWIND $rows AS row
MATCH (d:Donor {id: row.donor_id})
MATCH (n:Nonprofit {id: row.nonprofit_id})
CREATE (d)-[g:DONATED {id: row.id, amount: row.amount, ts: row.ts,
  initiative_id: row.initiative_id, recurring: row.recurring,
  ts_approximate: row.ts_approximate, load_id: $load_id}]->(n)
RETURN count(g) AS written, count(g) AS changed
