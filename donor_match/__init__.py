"""donor-match: services behind the GraphQL API and the command line."""
