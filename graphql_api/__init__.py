"""The Strawberry GraphQL API on Starlette."""
