// One donation from the API; `written` is 0 when the donor or nonprofit is unknown.
// A replay without a timestamp keeps the first one. `load_id` names the writer, as ETL loads do.
MATCH (d:Donor {id: $donor_id})
MATCH (n:Nonprofit {id: $nonprofit_id})
MERGE (d)-[g:DONATED {id: $id}]->(n)
SET g.amount = $amount, g.ts = coalesce($ts, g.ts, $now), g.load_id = $load_id
RETURN count(g) AS written, collect(g.ts)[0] AS ts
