// bench/neo4j_initial.py: Neo4j's own bulk path, a CSV in the server's import directory.
// Empty CSV fields read as null; typed columns are converted here.
LOAD CSV WITH HEADERS FROM $url AS row
CALL (row) {
  CREATE (d:Donor {id: row.id, name: row.name, email: row.email, phone: row.phone,
    street: row.street, city: row.city, state: row.state, zip: row.zip,
    donor_type: row.donor_type, load_id: $load_id})
  WITH d, row
  OPTIONAL MATCH (r:Region {id: row.region_id})
  FOREACH (region IN CASE WHEN r IS NULL THEN [] ELSE [r] END |
    CREATE (d)-[:LIVES_IN {load_id: $load_id}]->(region))
} IN TRANSACTIONS OF 2000 ROWS
