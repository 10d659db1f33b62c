// Donations per cause of the receiving nonprofit: compared between source and analyst graphs.
MATCH (:Donor)-[g:DONATED]->(:Nonprofit)-[:WORKS_ON]->(c:Cause)
RETURN c.id AS key, count(g) AS donations, sum(g.amount) AS amount
ORDER BY key
