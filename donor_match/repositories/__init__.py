"""Repositories: the services' only way to stored data, in domain values.

`ports` holds the Protocols, `store` their implementation over a `graph_store.GraphStore`
(the Cypher of `neo4j/api/`), `memory` the in-memory fakes the services' unit tests use.
Layers: graphql_api -> donor_match.services -> donor_match.repositories -> graph_store.
"""
