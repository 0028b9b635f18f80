"""Ids built of parts, unambiguous whatever the parts hold."""

from __future__ import annotations


def composite_id(*parts: str) -> str:
    """Join ``parts`` with ``:``, escaping ``\\`` and ``:`` inside them.

    Device ``a`` with offlineId ``b:c`` and device ``a:b`` with offlineId ``c``
    get different ids; parts without ``:`` or ``\\`` join as plain text.
    """
    return ":".join(part.replace("\\", "\\\\").replace(":", "\\:") for part in parts)
