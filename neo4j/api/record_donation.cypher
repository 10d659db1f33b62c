// One donation from the API; `written` is 0 when the donor or nonprofit is unknown.
// `load_id` names the writer, as ETL loads do for their rows.
MATCH (d:Donor {id: $donor_id})
MATCH (n:Nonprofit {id: $nonprofit_id})
MERGE (d)-[g:DONATED {id: $id}]->(n)
SET g.amount = $amount, g.ts = $ts, g.load_id = $load_id
RETURN count(g) AS written
