"""``RecordEnvelope.photos``: the photos a visit, order or work order points at, and whether
each has arrived over the upload channel (PENDING until its upload completes, then AVAILABLE)."""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

import strawberry

from service.api.context import Info
from service.api.scalars import DateTime


@strawberry.enum
class PhotoStatus(Enum):
    PENDING = "PENDING"  # the record points at it; its upload has not completed
    AVAILABLE = "AVAILABLE"  # GET /files/{attachmentId}


@strawberry.type
class Photo:
    attachment_id: strawberry.ID
    sha256: str | None
    captured_at: DateTime | None
    latitude: float | None
    longitude: float | None
    status: PhotoStatus
    url: str = strawberry.field(description="Where the photo is read (and uploaded, over tus)")
    size: int | None = strawberry.field(description="Bytes, once AVAILABLE")
    content_type: str | None = strawberry.field(description="By its content, once AVAILABLE")


async def photos_of(info: Info, fields: Any) -> list[Photo] | None:
    entries = fields.get("photos") if isinstance(fields, dict) else None
    if not isinstance(entries, list):
        return None
    uploads = await info.context.attachments.load_many([entry["attachmentId"] for entry in entries])
    photos = []
    for entry, upload in zip(entries, uploads, strict=True):
        available = upload is not None and upload.complete
        captured = entry.get("capturedAt")
        photos.append(
            Photo(
                attachment_id=strawberry.ID(entry["attachmentId"]),
                sha256=entry.get("sha256"),
                captured_at=datetime.fromisoformat(captured) if captured else None,
                latitude=entry.get("latitude"),
                longitude=entry.get("longitude"),
                status=PhotoStatus.AVAILABLE if available else PhotoStatus.PENDING,
                url=f"/files/{entry['attachmentId']}",
                size=upload.length if available and upload else None,
                content_type=upload.content_type if available and upload else None,
            )
        )
    return photos
