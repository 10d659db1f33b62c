// One page of matches in one round trip: each nonprofit with its region (and coordinates), its
// causes, and how many other donors gave both to it and to one of $supported_ids (the nonprofits
// the donor gave to): the collaborative evidence behind the match.
UNWIND $ids AS nonprofit_id
MATCH (n:Nonprofit {id: nonprofit_id})
OPTIONAL MATCH (n)-[:LOCATED_IN]->(r:Region)
OPTIONAL MATCH (n)<-[:DONATED]-(peer:Donor)-[:DONATED]->(s:Nonprofit)
WHERE s.id IN $supported_ids AND s.id <> nonprofit_id AND peer.id <> $donor_id
WITH n, r, count(DISTINCT peer) AS similar_donors
RETURN n.id AS id, n.name AS name, n.description AS description,
       n.funding_need AS funding_need, r.id AS region_id, r.name AS region_name,
       r.lat AS lat, r.lon AS lon, similar_donors,
       [(n)-[:WORKS_ON]->(c:Cause) | {id: c.id, name: c.name}] AS causes
