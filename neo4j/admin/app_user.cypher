// The application's own Neo4j user (NEO4J_USER=donor_match_app in Kubernetes): reads and writes
// data and applies the schema (`donor-match store init`), but cannot manage users, roles or
// databases. Run once per cluster against `system` as an admin (idempotent):
//   cypher-shell -a "$NEO4J_URI" -u neo4j -d system -f neo4j/admin/app_user.cypher \
//     -P "app_password => '<from the secret store>'"

// architect = read, write, create labels/types/properties, indexes and constraints.
CREATE ROLE donor_match_writer IF NOT EXISTS AS COPY OF architect;
CREATE USER donor_match_app IF NOT EXISTS
  SET PASSWORD $app_password CHANGE NOT REQUIRED
  SET HOME DATABASE neo4j;
GRANT ROLE donor_match_writer TO donor_match_app;
