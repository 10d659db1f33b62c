UNWIND $rows AS row
MATCH (n:Nonprofit {id: row.nonprofit_id})
MATCH (c:Cause {id: row.cause_id})
MERGE (n)-[w:WORKS_ON]->(c)
WITH w, w.load_id IS NULL AS changed
SET w.load_id = coalesce(w.load_id, $load_id)
RETURN count(w) AS written, count(CASE WHEN changed THEN 1 END) AS changed
