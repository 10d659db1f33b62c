// The unmet funding need of every nonprofit whose need changed at or after $since (the store's
// clock in epoch ms, as the writes stamp it: api/store_clock): its own stated need plus its
// initiatives', 0 when none is left. Found by index, so a refresh costs what changed, not every
// nonprofit stating a need.
MATCH (n:Nonprofit)
WHERE n.need_changed_at >= $since
OPTIONAL MATCH (i:Initiative)-[:INITIATIVE_OF]->(n)
WITH n, sum(CASE WHEN i.funding_need > 0 THEN i.funding_need ELSE 0.0 END) AS initiatives
RETURN n.id AS id,
       CASE WHEN n.funding_need > 0 THEN n.funding_need ELSE 0.0 END + initiatives AS need
