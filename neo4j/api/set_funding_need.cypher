// A nonprofit's current unmet funding need (null: none stated), stamped so that API processes
// re-read just the needs that changed (api/nonprofit_needs_changed). The stamp is the store's
// clock (epoch ms), not the writer's: readers compare it with the same clock (api/store_clock).
MATCH (n:Nonprofit {id: $id})
SET n.funding_need = $funding_need, n.need_changed_at = timestamp()
RETURN count(n) AS written
