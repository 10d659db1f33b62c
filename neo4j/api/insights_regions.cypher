// Donors to nonprofits sharing a cause with $id (itself included), grouped by home region.
MATCH (:Nonprofit {id: $id})-[:WORKS_ON]->(:Cause)<-[:WORKS_ON]-(peer:Nonprofit)
WITH DISTINCT peer
MATCH (peer)<-[g:DONATED]-(d:Donor)
WITH DISTINCT d, g
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
RETURN coalesce(r.name, 'Unknown') AS label, count(DISTINCT d) AS donors, sum(g.amount) AS amount
