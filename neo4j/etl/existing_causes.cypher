// Which of these ids the store already holds (referential checks of a load).
UNWIND $ids AS id
MATCH (c:Cause {id: id})
RETURN c.id AS id
