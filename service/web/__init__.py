"""The Sync Health dashboard page."""
