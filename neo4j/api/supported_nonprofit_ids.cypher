MATCH (:Donor {id: $donor_id})-[:DONATED]->(n:Nonprofit)
RETURN DISTINCT n.id AS id
