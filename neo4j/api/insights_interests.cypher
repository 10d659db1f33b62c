// The same donors grouped by the causes they say they care about.
// Two MATCH clauses: within one, Neo4j never binds one relationship twice, so the nonprofit
// itself (reached back over the same WORKS_ON) would drop out there and stay in on FalkorDB.
MATCH (:Nonprofit {id: $id})-[:WORKS_ON]->(cause:Cause)
MATCH (cause)<-[:WORKS_ON]-(peer:Nonprofit)
WITH DISTINCT peer
MATCH (peer)<-[:DONATED]-(d:Donor)
WITH DISTINCT d
MATCH (d)-[:INTERESTED_IN]->(c:Cause)
RETURN c.name AS label, count(DISTINCT d) AS donors, null AS amount
