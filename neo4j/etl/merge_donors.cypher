// A donor lives in at most one region: a moved donor loses the old LIVES_IN.
// `changed` covers the properties and the region; `load_id` moves only when one changes.
UNWIND $rows AS row
MERGE (d:Donor {id: row.id})
WITH d, row
OPTIONAL MATCH (d)-[:LIVES_IN]->(current:Region)
WITH d, row, collect(current.id) AS regions
WITH d, row, d.load_id IS NULL
  OR regions <> CASE WHEN row.region_id IS NULL THEN [] ELSE [row.region_id] END
  OR NOT (coalesce(d.name = row.name, d.name IS NULL AND row.name IS NULL)
    AND coalesce(d.email = row.email, d.email IS NULL AND row.email IS NULL)
    AND coalesce(d.phone = row.phone, d.phone IS NULL AND row.phone IS NULL)
    AND coalesce(d.street = row.street, d.street IS NULL AND row.street IS NULL)
    AND coalesce(d.city = row.city, d.city IS NULL AND row.city IS NULL)
    AND coalesce(d.state = row.state, d.state IS NULL AND row.state IS NULL)
    AND coalesce(d.zip = row.zip, d.zip IS NULL AND row.zip IS NULL)
    AND coalesce(d.donor_type = row.donor_type, d.donor_type IS NULL AND row.donor_type IS NULL)
  ) AS changed
SET d.name = row.name, d.email = row.email, d.phone = row.phone, d.street = row.street,
  d.city = row.city, d.state = row.state, d.zip = row.zip, d.donor_type = row.donor_type,
  d.load_id = CASE WHEN changed THEN $load_id ELSE d.load_id END
WITH d, row, changed
OPTIONAL MATCH (d)-[old:LIVES_IN]->(previous:Region)
WHERE row.region_id IS NULL OR previous.id <> row.region_id
DELETE old
WITH DISTINCT d, row, changed
OPTIONAL MATCH (r:Region {id: row.region_id})
FOREACH (region IN CASE WHEN r IS NULL THEN [] ELSE [r] END |
  MERGE (d)-[lives:LIVES_IN]->(region)
  ON CREATE SET lives.load_id = $load_id)
RETURN count(d) AS written, count(CASE WHEN changed THEN 1 END) AS changed
