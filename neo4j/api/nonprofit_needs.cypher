// Unmet funding need per nonprofit: its own stated need plus its initiatives' unmet needs.
// Only nonprofits with some need come back; the rest need nothing.
MATCH (n:Nonprofit)
OPTIONAL MATCH (i:Initiative)-[:INITIATIVE_OF]->(n)
WITH n, sum(coalesce(i.funding_need, 0.0)) AS initiatives
WITH n.id AS id, coalesce(n.funding_need, 0.0) + initiatives AS need
WHERE need > 0
RETURN id, need
