UNWIND $ids AS donor_id
MATCH (d:Donor {id: donor_id})
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
RETURN d.id AS id, d.name AS name, d.budget AS budget, r.id AS region_id,
       r.name AS region_name,
       [(d)-[:INTERESTED_IN]->(c:Cause) | {id: c.id, name: c.name}] AS causes
