MATCH (d:Donor)-[:INTERESTED_IN]->(c:Cause)
RETURN d.id AS donor_id, c.id AS cause_id
ORDER BY donor_id, cause_id SKIP $skip LIMIT $limit
