// Which of these ids the store already holds (referential checks of a load).
UNWIND $ids AS id
MATCH (i:Initiative {id: id})
RETURN i.id AS id
