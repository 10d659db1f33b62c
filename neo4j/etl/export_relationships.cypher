// Every relationship with every property, named by its endpoints' labels and ids.
MATCH (a)-[r]->(b)
RETURN type(r) AS type, labels(a)[0] AS source_label, a.id AS source, labels(b)[0] AS target_label,
  b.id AS target, properties(r) AS properties
ORDER BY type(r), labels(a)[0], a.id, labels(b)[0], b.id, r.id
SKIP $skip LIMIT $limit
