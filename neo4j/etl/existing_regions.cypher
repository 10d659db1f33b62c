// Which of these ids the store already holds (referential checks of a load).
UNWIND $ids AS id
MATCH (r:Region {id: id})
RETURN r.id AS id
