// Which of these ids the store already holds (referential checks of a load).
UNWIND $ids AS id
MATCH (d:Donor {id: id})
RETURN d.id AS id
