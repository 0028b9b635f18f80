"""The sync engine: record types and policies, the push pipeline, conflicts, refusals.

Plain Python; knows nothing of GraphQL or MongoDB.
"""
