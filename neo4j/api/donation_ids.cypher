// Which of the given donation ids are stored (bench/faults.py: nothing acknowledged was lost).
UNWIND $ids AS id
MATCH ()-[g:DONATED {id: id}]->()
RETURN g.id AS id
