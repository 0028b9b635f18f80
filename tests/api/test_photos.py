"""Records point at photos; photos never hold records back (seed 004: "Large payloads like
photos use a separate channel so they do not block order entries")."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
from collections.abc import AsyncIterator

import httpx
import pytest

from service.app import create_app
from service.settings import Settings
from tests.api.conftest import Api

AT = "2026-11-20T09:00:00+08:00"
PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + os.urandom(40_000)
SHA = hashlib.sha256(PHOTO).hexdigest()
HEALTH = """query{ syncHealth{ reps{ status pendingPhotos devices{ device{id} status pendingPhotos
  oldestPendingPhotoAt } } } }"""
RECORD = """query($t: RecordType!, $id: ID!){ record(recordType:$t, recordId:$id){
  photos{ attachmentId sha256 capturedAt latitude longitude status url size contentType } } }"""


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    """Photos count as overdue in Sync Health as soon as they are referenced."""
    app = create_app(dataclasses.replace(settings, photo_pending_after_hours=0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fieldsync.test") as http:
            yield Api(http)


async def ali_with_outlet(api: Api) -> str:
    """Rep Ali's phone, with an outlet assigned to Ali and a product to order."""
    rep_id, rep_token = await api.user("Ali", "REP")
    await api.write("OUTLET", "outlet-1", {"name": "Kedai Ali", "repIds": [rep_id]})
    await api.write("PRODUCT", "p-1", {"sku": "MILO-1", "name": "Milo 1kg", "unitPrice": 21.5})
    return await api.device(rep_token, "phone-ali")


def order(photos: list[dict]) -> dict:
    return {
        "offlineId": "o-1",
        "recordType": "ORDER",
        "recordId": "order-1",
        "operation": "UPSERT",
        "capturedAt": AT,
        "fields": {
            "outletId": "outlet-1",
            "status": "SUBMITTED",
            "lines": [{"productId": "p-1", "quantity": 12}],
            "photos": photos,
        },
    }


async def upload(api: Api, device: str, attachment_id: str, body: bytes) -> None:
    metadata = f"attachmentId {base64.b64encode(attachment_id.encode()).decode()}"
    headers = {"Tus-Resumable": "1.0.0", "Authorization": f"Bearer {device}"}
    created = await api.http.post(
        "/files/", headers={**headers, "Upload-Length": str(len(body)), "Upload-Metadata": metadata}
    )
    done = await api.http.patch(
        created.headers["Location"],
        content=body,
        headers={**headers, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
    )
    assert done.status_code == 204, done.text


async def test_an_order_with_a_photo_not_yet_uploaded_is_applied_and_the_photo_follows(api: Api) -> None:
    device = await ali_with_outlet(api)
    shelf = {"attachmentId": "shelf-1", "sha256": SHA, "capturedAt": AT, "latitude": 3.1, "longitude": 101.6}
    [result] = await api.push(device, "phone-ali", [order([shelf])])
    assert result["status"] == "APPLIED"  # the order reaches headquarters at once

    [photo] = (await api.data(RECORD, {"t": "ORDER", "id": "order-1"}))["record"]["photos"]
    assert (photo["status"], photo["url"], photo["size"]) == ("PENDING", "/files/shelf-1", None)
    assert (photo["sha256"], photo["latitude"], photo["capturedAt"]) == (SHA, 3.1, "2026-11-20T01:00:00.000Z")
    [rep] = (await api.data(HEALTH))["syncHealth"]["reps"]
    [phone] = rep["devices"]
    assert (rep["pendingPhotos"], phone["pendingPhotos"], phone["status"]) == (1, 1, "BACKLOGGED")
    assert phone["oldestPendingPhotoAt"] is not None

    await upload(api, device, "shelf-1", PHOTO)
    [photo] = (await api.data(RECORD, {"t": "ORDER", "id": "order-1"}, device))["record"]["photos"]
    assert (photo["status"], photo["size"], photo["contentType"]) == ("AVAILABLE", len(PHOTO), "image/jpeg")
    [rep] = (await api.data(HEALTH))["syncHealth"]["reps"]
    assert (rep["pendingPhotos"], rep["devices"][0]["status"]) == (0, "HEALTHY")


async def test_a_photo_uploaded_before_its_order_is_available_at_once(api: Api) -> None:
    device = await ali_with_outlet(api)
    await upload(api, device, "shelf-2", PHOTO)
    [result] = await api.push(device, "phone-ali", [order([{"attachmentId": "shelf-2"}])])
    assert result["status"] == "APPLIED"
    [photo] = (await api.data(RECORD, {"t": "ORDER", "id": "order-1"}))["record"]["photos"]
    assert photo["status"] == "AVAILABLE"
    [rep] = (await api.data(HEALTH))["syncHealth"]["reps"]
    assert rep["pendingPhotos"] == 0


async def test_a_malformed_photo_entry_is_refused_like_any_malformed_field(api: Api) -> None:
    device = await ali_with_outlet(api)
    [result] = await api.push(device, "phone-ali", [order([{"attachmentId": "x", "sha256": "not-hex"}])])
    assert (result["status"], result["refusal"]["field"]) == ("REFUSED", "photos[0].sha256")
