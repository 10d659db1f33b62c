UNWIND $rows AS row
MERGE (c:Cause {id: row.id})
SET c.name = row.name
RETURN count(c) AS written
