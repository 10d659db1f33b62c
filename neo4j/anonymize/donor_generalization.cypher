// The k-anonymity fields of analyst donors: first donation year (or a band) and the level of
// generalization each donor was released at.
UNWIND $rows AS row
MATCH (d:Donor {id: row.id})
SET d.first_year = row.first_year, d.generalization = row.level
RETURN count(d) AS written
