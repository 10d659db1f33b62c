// Remove an initiative; its nonprofit's need changes with it (stamped, see api/set_funding_need).
MATCH (i:Initiative {id: $id})-[:INITIATIVE_OF]->(n:Nonprofit)
SET n.need_changed_at = timestamp()
DETACH DELETE i
RETURN count(*) AS deleted
