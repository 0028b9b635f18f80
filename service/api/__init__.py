"""The GraphQL API: strawberry types, resolvers, subscriptions, auth context, limits."""
