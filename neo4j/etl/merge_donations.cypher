// Rows whose donor or nonprofit is unknown match nothing: `written` tells the caller.
// A gift to an initiative keeps the initiative's id; (:Initiative)-[:INITIATIVE_OF]->(n) links
// it to the same nonprofit, so donor -> initiative -> nonprofit is one join away.
// ts_approximate: the file had no date and the load supplied one (etl.validate).
UNWIND $rows AS row
MATCH (d:Donor {id: row.donor_id})
MATCH (n:Nonprofit {id: row.nonprofit_id})
MERGE (d)-[g:DONATED {id: row.id}]->(n)
WITH g, row, g.load_id IS NULL
  OR NOT (coalesce(g.amount = row.amount, g.amount IS NULL AND row.amount IS NULL)
    AND coalesce(g.ts = row.ts, g.ts IS NULL AND row.ts IS NULL)
    AND coalesce(g.initiative_id = row.initiative_id,
      g.initiative_id IS NULL AND row.initiative_id IS NULL)
    AND coalesce(g.recurring = row.recurring, g.recurring IS NULL AND row.recurring IS NULL)
    AND coalesce(g.ts_approximate = row.ts_approximate,
      g.ts_approximate IS NULL AND row.ts_approximate IS NULL)
  ) AS changed
SET g.amount = row.amount, g.ts = row.ts, g.initiative_id = row.initiative_id,
  g.recurring = row.recurring, g.ts_approximate = row.ts_approximate,
  g.load_id = CASE WHEN changed THEN $load_id ELSE g.load_id END
RETURN count(g) AS written, count(CASE WHEN changed THEN 1 END) AS changed
