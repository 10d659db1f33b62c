MATCH (n:Nonprofit {id: $id})
OPTIONAL MATCH (n)-[old:WORKS_ON]->(:Cause)
DELETE old
WITH DISTINCT n
UNWIND $cause_ids AS cause_id
MATCH (c:Cause {id: cause_id})
MERGE (n)-[:WORKS_ON]->(c)
RETURN count(c) AS linked
