UNWIND $rows AS row
MATCH (n:Nonprofit {id: row.nonprofit_id})
MATCH (c:Cause {id: row.cause_id})
MERGE (n)-[w:WORKS_ON]->(c)
RETURN count(w) AS written
