// Donors to nonprofits sharing a cause with $id (itself included), grouped by home region.
// Two MATCH clauses: within one, Neo4j never binds one relationship twice, so the nonprofit
// itself (reached back over the same WORKS_ON) would drop out there and stay in on FalkorDB.
MATCH (:Nonprofit {id: $id})-[:WORKS_ON]->(cause:Cause)
MATCH (cause)<-[:WORKS_ON]-(peer:Nonprofit)
WITH DISTINCT peer
MATCH (peer)<-[g:DONATED]-(d:Donor)
WITH DISTINCT d, g
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
RETURN coalesce(r.name, 'Unknown') AS label, count(DISTINCT d) AS donors, sum(g.amount) AS amount
