UNWIND $rows AS row
MATCH (d:Donor {id: row.donor_id})
MATCH (c:Cause {id: row.cause_id})
MERGE (d)-[i:INTERESTED_IN]->(c)
WITH i, i.load_id IS NULL AS changed
SET i.load_id = coalesce(i.load_id, $load_id)
RETURN count(i) AS written, count(CASE WHEN changed THEN 1 END) AS changed
