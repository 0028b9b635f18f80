"""FieldSync's reference device client: talks to the service over HTTP only (see docs/device-client.md)."""

from fieldsync_client.client import Device, SyncStats, outlet_fields
from fieldsync_client.transport import GraphQLError, Offline, Transport

__all__ = ["Device", "GraphQLError", "Offline", "SyncStats", "Transport", "outlet_fields"]
