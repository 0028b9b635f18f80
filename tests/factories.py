"""Builders for the changes and records the tests talk about."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from pycrdt import Doc, Map

from service.domain.changes import Change, Operation
from service.domain.record_types import RecordType
from service.domain.records import Record

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
AT = "2026-11-20T09:00:00+08:00"  # T0 as a device writes it on the wire
_counter = itertools.count(1)


def change(
    record_type: RecordType,
    record_id: str,
    fields: dict[str, Any] | None = None,
    *,
    offline_id: str | None = None,
    base_version: int | None = None,
    operation: Operation = Operation.UPSERT,
    captured_at: datetime | None = None,
    **extra: Any,
) -> Change:
    n = next(_counter)
    return Change(
        offline_id=offline_id or f"off-{n}",
        record_type=record_type,
        record_id=record_id,
        operation=operation,
        captured_at=captured_at or T0 + timedelta(seconds=n),
        base_version=base_version,
        fields=fields,
        **extra,
    )


def pushed_visit(
    offline_id: str, record_id: str, outlet_id: str = "o1", *, base_version: int | None = None, **fields: Any
) -> dict[str, Any]:
    """A planned VISIT as a device pushes it: one ``ChangeInput`` of ``pushChanges``."""
    change = {
        "offlineId": offline_id,
        "recordType": "VISIT",
        "recordId": record_id,
        "operation": "UPSERT",
        "capturedAt": AT,
        "fields": {"outletId": outlet_id, "status": "PLANNED", **fields},
    }
    return change if base_version is None else change | {"baseVersion": base_version}


def order_fields(outlet_id: str = "o1", *lines: tuple[str, float], **fields: Any) -> dict[str, Any]:
    return {
        "outletId": outlet_id,
        "status": "SUBMITTED",
        "lines": [{"productId": p, "quantity": q} for p, q in lines] or [{"productId": "p1", "quantity": 1}],
        **fields,
    }


def work_order_fields(outlet_id: str = "o1", **fields: Any) -> dict[str, Any]:
    return {"outletId": outlet_id, "status": "OPEN", "description": "Fix the chiller", **fields}


def outlet(record_id: str = "o1", version: int = 1, **fields: Any) -> Record:
    """An outlet assigned to rep1, its CRDT state holding its fields."""
    base = {"name": "Kedai Ali", "latitude": 3.139, "longitude": 101.6869, "active": True, "repIds": ["rep1"]}
    doc = Doc()
    target = doc.get("fields", type=Map)
    with doc.transaction():
        for name, value in (base | fields).items():
            target[name] = value
    return Record(
        RecordType.OUTLET,
        record_id,
        version,
        base | fields,
        updated_at=T0,
        updated_by="user:hq",
        crdt_state=doc.get_update(),
    )


def product(record_id: str = "p1", **fields: Any) -> Record:
    base = {"sku": "MILO-1", "name": "Milo 1kg", "unitPrice": 12.5, "active": True}
    return Record(RecordType.PRODUCT, record_id, 1, base | fields, updated_at=T0, updated_by="user:hq")


def owned(
    record_type: RecordType,
    record_id: str,
    fields: dict[str, Any],
    *,
    owner: str = "rep1",
    version: int = 1,
    updated_by: str = "dev1",
) -> Record:
    return Record(
        record_type,
        record_id,
        version,
        {"repId": owner, **fields},
        updated_at=T0,
        updated_by=updated_by,
        owner=owner,
        writer_since=version,
    )
