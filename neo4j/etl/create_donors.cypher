// `etl load --initial`: donors into an empty graph. CREATE skips MERGE's lookup; the unique
// constraint on Donor.id still refuses a duplicate. Same result as merge_donors.cypher.
UNWIND $rows AS row
CREATE (d:Donor {id: row.id, name: row.name, email: row.email, phone: row.phone,
  street: row.street, city: row.city, state: row.state, zip: row.zip,
  donor_type: row.donor_type, load_id: $load_id})
WITH d, row
OPTIONAL MATCH (r:Region {id: row.region_id})
FOREACH (region IN CASE WHEN r IS NULL THEN [] ELSE [r] END |
  CREATE (d)-[:LIVES_IN {load_id: $load_id}]->(region))
RETURN count(d) AS written, count(d) AS changed
