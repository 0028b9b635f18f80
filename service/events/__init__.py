"""Publish/subscribe of sync events inside a process and across instances."""
