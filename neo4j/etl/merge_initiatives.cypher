// An initiative (a DonorsChoose project, a campaign) belongs to exactly one nonprofit.
UNWIND $rows AS row
MATCH (n:Nonprofit {id: row.nonprofit_id})
MERGE (i:Initiative {id: row.id})
WITH i, n, row
OPTIONAL MATCH (i)-[:INITIATIVE_OF]->(current:Nonprofit)
WITH i, n, row, collect(current.id) AS owners
WITH i, n, row, i.load_id IS NULL
  OR owners <> [row.nonprofit_id]
  OR NOT (coalesce(i.name = row.name, i.name IS NULL AND row.name IS NULL)
    AND coalesce(i.posted_ts = row.posted_ts, i.posted_ts IS NULL AND row.posted_ts IS NULL)
  ) AS changed
SET i.name = row.name, i.posted_ts = row.posted_ts,
  i.load_id = CASE WHEN changed THEN $load_id ELSE i.load_id END
WITH i, n, row, changed
OPTIONAL MATCH (i)-[old:INITIATIVE_OF]->(previous:Nonprofit)
WHERE previous.id <> row.nonprofit_id
DELETE old
WITH DISTINCT i, n, row, changed
MERGE (i)-[owner:INITIATIVE_OF]->(n)
ON CREATE SET owner.load_id = $load_id
RETURN count(i) AS written, count(CASE WHEN changed THEN 1 END) AS changed
