// Graph schema, Neo4j 5 syntax. Applied idempotently by `donor-match store init`;
// the FalkorDB adapter translates each statement to its own index/constraint commands.
// Every loader MERGEs on these ids, so each needs a unique constraint (and its index).
CREATE CONSTRAINT donor_id IF NOT EXISTS FOR (d:Donor) REQUIRE d.id IS UNIQUE;
CREATE CONSTRAINT nonprofit_id IF NOT EXISTS FOR (n:Nonprofit) REQUIRE n.id IS UNIQUE;
CREATE CONSTRAINT cause_id IF NOT EXISTS FOR (c:Cause) REQUIRE c.id IS UNIQUE;
CREATE CONSTRAINT region_id IF NOT EXISTS FOR (r:Region) REQUIRE r.id IS UNIQUE;
// A donation is a relationship carrying its own id, amount and timestamp.
CREATE CONSTRAINT donation_id IF NOT EXISTS FOR ()-[g:DONATED]-() REQUIRE g.id IS UNIQUE;
CREATE CONSTRAINT api_key_id IF NOT EXISTS FOR (k:ApiKey) REQUIRE k.id IS UNIQUE;
CREATE INDEX nonprofit_name IF NOT EXISTS FOR (n:Nonprofit) ON (n.name);
CREATE CONSTRAINT initiative_id IF NOT EXISTS FOR (i:Initiative) REQUIRE i.id IS UNIQUE;
// Matching ranks by unmet funding need: the API reads the few nodes that state one by index.
CREATE INDEX nonprofit_funding_need IF NOT EXISTS FOR (n:Nonprofit) ON (n.funding_need);
CREATE INDEX initiative_funding_need IF NOT EXISTS FOR (i:Initiative) ON (i.funding_need);
// ... and then only those whose need changed since its last read, by the stamp the writes set.
CREATE INDEX nonprofit_need_changed IF NOT EXISTS FOR (n:Nonprofit) ON (n.need_changed_at);
// Served-match counters: the API merges one per hour and model version; the drift job sums a window.
CREATE INDEX matches_served_hour IF NOT EXISTS FOR (s:MatchesServed) ON (s.hour);
