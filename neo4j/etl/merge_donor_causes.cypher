UNWIND $rows AS row
MATCH (d:Donor {id: row.donor_id})
MATCH (c:Cause {id: row.cause_id})
MERGE (d)-[i:INTERESTED_IN]->(c)
RETURN count(i) AS written
