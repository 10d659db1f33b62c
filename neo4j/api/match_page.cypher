// One page of matches in one round trip: each nonprofit in $ids with its region (and its
// coordinates, for the distance reason) and its causes.
UNWIND $ids AS nonprofit_id
MATCH (n:Nonprofit {id: nonprofit_id})
OPTIONAL MATCH (n)-[:LOCATED_IN]->(r:Region)
RETURN n.id AS id, n.name AS name, n.description AS description,
       n.funding_need AS funding_need, r.id AS region_id, r.name AS region_name,
       r.lat AS lat, r.lon AS lon,
       [(n)-[:WORKS_ON]->(c:Cause) | {id: c.id, name: c.name}] AS causes
