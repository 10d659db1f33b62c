// The same donors grouped by the causes they say they care about.
MATCH (:Nonprofit {id: $id})-[:WORKS_ON]->(:Cause)<-[:WORKS_ON]-(peer:Nonprofit)
WITH DISTINCT peer
MATCH (peer)<-[:DONATED]-(d:Donor)
WITH DISTINCT d
MATCH (d)-[:INTERESTED_IN]->(c:Cause)
RETURN c.name AS label, count(DISTINCT d) AS donors, null AS amount
