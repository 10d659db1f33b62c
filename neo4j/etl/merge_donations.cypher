// Rows whose donor or nonprofit is unknown match nothing: `written` tells the caller.
UNWIND $rows AS row
MATCH (d:Donor {id: row.donor_id})
MATCH (n:Nonprofit {id: row.nonprofit_id})
MERGE (d)-[g:DONATED {id: row.id}]->(n)
SET g.amount = row.amount, g.ts = row.ts
RETURN count(g) AS written
