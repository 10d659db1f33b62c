// One page of matches in one round trip: each nonprofit in $ids with its region (and its
// coordinates), its causes, and `similar_donors`: how many other donors gave both to one of the
// nonprofits the donor gave to and to this one (the collaborative evidence behind a match).
// The peers are found from the donor's side first (the donor's few nonprofits, their donors,
// those donors' gifts): starting from the page's nonprofits would expand every donor of every
// popular nonprofit on the page.
OPTIONAL MATCH (d:Donor {id: $donor_id})-[:DONATED]->(:Nonprofit)<-[:DONATED]-(peer:Donor)
WHERE peer <> d
WITH DISTINCT peer
OPTIONAL MATCH (peer)-[:DONATED]->(m:Nonprofit)
WHERE m.id IN $ids
WITH m.id AS matched, count(DISTINCT peer) AS peers
WITH collect({id: matched, peers: peers}) AS similar
UNWIND $ids AS nonprofit_id
MATCH (n:Nonprofit {id: nonprofit_id})
OPTIONAL MATCH (n)-[:LOCATED_IN]->(r:Region)
RETURN n.id AS id, n.name AS name, n.description AS description,
       n.funding_need AS funding_need, r.id AS region_id, r.name AS region_name,
       r.lat AS lat, r.lon AS lon,
       coalesce(head([s IN similar WHERE s.id = nonprofit_id | s.peers]), 0) AS similar_donors,
       [(n)-[:WORKS_ON]->(c:Cause) | {id: c.id, name: c.name}] AS causes
