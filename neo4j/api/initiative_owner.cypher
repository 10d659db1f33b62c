// Which nonprofit an initiative belongs to; no row when the initiative does not exist.
MATCH (i:Initiative {id: $id})
OPTIONAL MATCH (i)-[:INITIATIVE_OF]->(n:Nonprofit)
RETURN n.id AS nonprofit_id
