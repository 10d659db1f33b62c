// Lineage: `load_id` names the load that last changed a node or edge. It moves only when a
// value changes, so re-running a load (or resuming a killed one) changes nothing at all.
UNWIND $rows AS row
MERGE (r:Region {id: row.id})
WITH r, row, r.load_id IS NULL
  OR NOT (coalesce(r.name = row.name, r.name IS NULL AND row.name IS NULL)
    AND coalesce(r.lat = row.lat, r.lat IS NULL AND row.lat IS NULL)
    AND coalesce(r.lon = row.lon, r.lon IS NULL AND row.lon IS NULL)) AS changed
SET r.name = row.name, r.lat = row.lat, r.lon = row.lon,
  r.load_id = CASE WHEN changed THEN $load_id ELSE r.load_id END
RETURN count(r) AS written, count(CASE WHEN changed THEN 1 END) AS changed
