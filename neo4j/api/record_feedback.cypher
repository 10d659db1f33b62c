// Feedback on a served match, kept as training signal: one relationship per event.
MATCH (d:Donor {id: $donor_id})
MATCH (n:Nonprofit {id: $nonprofit_id})
CREATE (d)-[f:FEEDBACK {action: $action, ts: $ts, model_version: $model_version}]->(n)
RETURN count(f) AS written
