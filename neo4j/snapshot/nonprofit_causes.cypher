// The causes of one page of exported nonprofits (etl/snapshot.py sorts the table).
UNWIND $ids AS nonprofit_id
MATCH (n:Nonprofit {id: nonprofit_id})-[:WORKS_ON]->(c:Cause)
RETURN n.id AS nonprofit_id, c.id AS cause_id
