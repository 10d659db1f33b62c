// The initiatives of each nonprofit in $ids, for the Nonprofit.initiatives DataLoader.
UNWIND $ids AS nonprofit_id
MATCH (i:Initiative)-[:INITIATIVE_OF]->(:Nonprofit {id: nonprofit_id})
RETURN nonprofit_id, i.id AS id, i.name AS title, i.description AS description,
       i.funding_goal AS funding_goal, i.funding_need AS funding_need, i.posted_ts AS posted_ts,
       [(i)-[:WORKS_ON]->(c:Cause) | {id: c.id, name: c.name}] AS causes
ORDER BY nonprofit_id, id
