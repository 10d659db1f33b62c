MATCH (i:Initiative {id: $id})
DETACH DELETE i
RETURN count(*) AS deleted
