// bench/neo4j_initial.py: what a first load stored.
MATCH (d:Donor)
WITH count(d) AS donors
MATCH ()-[g:DONATED]->()
RETURN donors, count(g) AS donations
