// Empty the analyst graph in bounded batches before it is rebuilt (run until deleted = 0).
MATCH (n)
WITH n LIMIT $limit
DETACH DELETE n
RETURN count(*) AS deleted
