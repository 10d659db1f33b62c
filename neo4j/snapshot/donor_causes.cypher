// The causes of one page of exported donors (etl/snapshot.py sorts the table).
UNWIND $ids AS donor_id
MATCH (d:Donor {id: donor_id})-[:INTERESTED_IN]->(c:Cause)
RETURN d.id AS donor_id, c.id AS cause_id
