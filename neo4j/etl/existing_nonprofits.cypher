// Which of these ids the store already holds (referential checks of a load).
UNWIND $ids AS id
MATCH (n:Nonprofit {id: id})
RETURN n.id AS id
