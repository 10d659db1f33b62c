// The anonymized analyst database and its read-only role (Neo4j 5 Enterprise, cluster).
// Administration commands: run them once per cluster against the `system` database as an admin;
// every statement is idempotent, so a rerun is harmless (see docs/operations.md):
//   cypher-shell -a "$NEO4J_URI" -u neo4j -d system -f neo4j/admin/analyst.cypher \
//     -P "analyst_password => '<from the secret store>'"
// `donor-match etl anonymize` fills the database; the API's analyticsQuery reads it as `analyst`.

// One primary takes the anonymize job's writes; two secondaries spread analysts' reads.
CREATE DATABASE analyst IF NOT EXISTS TOPOLOGY 1 PRIMARY 2 SECONDARIES WAIT;

CREATE ROLE analyst_reader IF NOT EXISTS;
GRANT ACCESS ON DATABASE analyst TO analyst_reader;
GRANT MATCH {*} ON GRAPH analyst TO analyst_reader;
// Read-only even if someone later grants a broader role by mistake: denies win over grants.
DENY WRITE ON GRAPH analyst TO analyst_reader;
// PUBLIC grants access to the default database, which holds donors' identities: deny it.
DENY ACCESS ON DATABASE neo4j TO analyst_reader;
// No LOAD CSV from analysts' queries (the API refuses it too).
DENY LOAD ON ALL DATA TO analyst_reader;

CREATE USER analyst IF NOT EXISTS
  SET PASSWORD $analyst_password CHANGE NOT REQUIRED
  SET HOME DATABASE analyst;
GRANT ROLE analyst_reader TO analyst;
