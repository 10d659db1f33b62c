// A nonprofit's current unmet funding need (null: none stated), stamped so that API processes
// re-read just the needs that changed (api/nonprofit_needs_changed).
MATCH (n:Nonprofit {id: $id})
SET n.funding_need = $funding_need, n.need_changed_at = $now
RETURN count(n) AS written
