// A cause has at most one parent (NTEE major group, DonorsChoose category): PART_OF.
// A parent named here is validated to exist in the same load or the store; MERGE makes its
// node even when the parent's own row comes later in the batch.
UNWIND $rows AS row
MERGE (c:Cause {id: row.id})
WITH c, row
OPTIONAL MATCH (c)-[:PART_OF]->(current:Cause)
WITH c, row, collect(current.id) AS parents
WITH c, row, c.load_id IS NULL
  OR parents <> CASE WHEN row.parent_id IS NULL THEN [] ELSE [row.parent_id] END
  OR NOT coalesce(c.name = row.name, c.name IS NULL AND row.name IS NULL) AS changed
SET c.name = row.name, c.load_id = CASE WHEN changed THEN $load_id ELSE c.load_id END
WITH c, row, changed
OPTIONAL MATCH (c)-[old:PART_OF]->(previous:Cause)
WHERE row.parent_id IS NULL OR previous.id <> row.parent_id
DELETE old
WITH DISTINCT c, row, changed
FOREACH (parent_id IN CASE WHEN row.parent_id IS NULL THEN [] ELSE [row.parent_id] END |
  MERGE (p:Cause {id: parent_id})
  MERGE (c)-[part:PART_OF]->(p)
  ON CREATE SET part.load_id = $load_id)
RETURN count(c) AS written, count(CASE WHEN changed THEN 1 END) AS changed
