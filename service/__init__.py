"""FieldSync: a sync backend for offline-first field apps."""
