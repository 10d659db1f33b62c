// Unmet funding needs: each nonprofit's own stated need, and each of its initiatives' unmet
// need (the API sums them per nonprofit). Only nodes stating a need come back, found by index:
// the rest need nothing, and scanning every nonprofit would cost far more than this read.
MATCH (n:Nonprofit)
WHERE n.funding_need > 0
RETURN n.id AS id, n.funding_need AS need
UNION ALL
MATCH (i:Initiative)-[:INITIATIVE_OF]->(n:Nonprofit)
WHERE i.funding_need > 0
RETURN n.id AS id, i.funding_need AS need
