// A nonprofit's current unmet funding need (null: none stated).
MATCH (n:Nonprofit {id: $id})
SET n.funding_need = $funding_need
RETURN count(n) AS written
