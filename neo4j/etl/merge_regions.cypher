UNWIND $rows AS row
MERGE (r:Region {id: row.id})
SET r.name = row.name, r.lat = row.lat, r.lon = row.lon
RETURN count(r) AS written
