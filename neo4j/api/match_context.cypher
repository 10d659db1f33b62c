// What a donor's matches are ranked and explained against: home region coordinates, stated
// causes, the nonprofits given to (excluded by default) and their causes. No row: no such donor.
// Each comprehension names its own variables: FalkorDB mixes up ones reused across them.
MATCH (d:Donor {id: $donor_id})
OPTIONAL MATCH (d)-[:LIVES_IN]->(r:Region)
RETURN r.id AS region_id, r.lat AS lat, r.lon AS lon,
       [(d)-[:INTERESTED_IN]->(stated:Cause) | stated.id] AS interests,
       [(d)-[:DONATED]->(given:Nonprofit) | given.id] AS supported,
       [(d)-[:DONATED]->(:Nonprofit)-[:WORKS_ON]->(served:Cause) | served.id] AS given_causes
