// Replace a donor's stated causes and budget; `linked` counts the causes now stated.
MATCH (d:Donor {id: $donor_id})
SET d.budget = $budget
WITH d
OPTIONAL MATCH (d)-[old:INTERESTED_IN]->(:Cause)
DELETE old
WITH DISTINCT d
UNWIND $cause_ids AS cause_id
MATCH (c:Cause {id: cause_id})
MERGE (d)-[:INTERESTED_IN]->(c)
RETURN count(c) AS linked
