"""The service layer: GraphQL resolvers and the CLI only translate to and from these."""
