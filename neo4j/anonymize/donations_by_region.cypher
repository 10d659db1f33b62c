// Donations per region of the receiving nonprofit: compared between source and analyst graphs.
MATCH (:Donor)-[g:DONATED]->(:Nonprofit)-[:LOCATED_IN]->(r:Region)
RETURN r.id AS key, count(g) AS donations, sum(g.amount) AS amount
ORDER BY key
