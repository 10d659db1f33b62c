// Every node with every property: full-graph comparisons and the PII audit of the analyst graph.
MATCH (n)
RETURN labels(n) AS labels, properties(n) AS properties
ORDER BY labels(n)[0], n.id
SKIP $skip LIMIT $limit
