// bench/neo4j_initial.py: Neo4j's own bulk path, a CSV in the server's import directory.
LOAD CSV WITH HEADERS FROM $url AS row
CALL (row) {
  MATCH (d:Donor {id: row.donor_id})
  MATCH (n:Nonprofit {id: row.nonprofit_id})
  CREATE (d)-[:DONATED {id: row.id, amount: toFloat(row.amount), ts: toInteger(row.ts),
    initiative_id: row.initiative_id, recurring: toBoolean(row.recurring),
    ts_approximate: toBoolean(row.ts_approximate), load_id: $load_id}]->(n)
} IN TRANSACTIONS OF 2000 ROWS
