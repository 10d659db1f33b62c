// Readiness: the database answers a read for this user (Neo4j; FalkorDB's adapter PINGs).
RETURN 1 AS ok
