"""The tus server's rules, request by request: what it speaks, whom it serves, what it refuses."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import os
from collections.abc import AsyncIterator

import httpx
import pytest
from PIL import Image

from service.app import create_app
from service.settings import Settings
from service.uploads import storage
from tests.api.conftest import Api

TUS = {"Tus-Resumable": "1.0.0"}


def jpeg(size: int = 600) -> bytes:
    """A real JPEG of a shelf-coloured noise image, different every time."""
    image = Image.frombytes("RGB", (size, size // 2), os.urandom(size * (size // 2) * 3))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def meta(**values: str) -> str:
    return ",".join(f"{key} {base64.b64encode(value.encode()).decode()}" for key, value in values.items())


@pytest.fixture
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(dataclasses.replace(settings, upload_max_bytes=2 * 1024 * 1024, upload_types="image/jpeg"))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://fieldsync.test") as http:
            yield Api(http)


async def rep_device(api: Api, name: str = "Aisyah") -> tuple[str, str, str]:
    rep_id, rep_token = await api.user(name, "REP")
    return rep_id, rep_token, await api.device(rep_token, f"{name}-phone")


def auth(token: str) -> dict[str, str]:
    return {**TUS, "Authorization": f"Bearer {token}"}


async def create(api: Api, token: str, length: int, **metadata: str) -> httpx.Response:
    return await api.http.post(
        "/files/", headers={**auth(token), "Upload-Length": str(length), "Upload-Metadata": meta(**metadata)}
    )


async def patch(api: Api, token: str, location: str, offset: int, body: bytes, **headers: str) -> httpx.Response:
    return await api.http.patch(
        location,
        content=body,
        headers={
            **auth(token),
            "Upload-Offset": str(offset),
            "Content-Type": "application/offset+octet-stream",
            **headers,
        },
    )


async def test_options_tells_what_the_server_speaks(api: Api) -> None:
    response = await api.http.options("/files/")
    assert response.status_code == 204
    assert response.headers["Tus-Version"] == "1.0.0"
    assert set(response.headers["Tus-Extension"].split(",")) == {
        "creation",
        "creation-with-upload",
        "termination",
        "checksum",
        "expiration",
    }
    assert "sha256" in response.headers["Tus-Checksum-Algorithm"].split(",")
    assert response.headers["Tus-Max-Size"] == str(2 * 1024 * 1024)


async def test_only_device_tokens_upload_and_the_protocol_version_is_required(api: Api) -> None:
    _, rep_token, device = await rep_device(api)
    assert (await create(api, "not-a-token", 10)).status_code == 401
    assert (await create(api, rep_token, 10)).status_code == 403  # a rep's user token, not a device's
    no_version = await api.http.post("/files/", headers={"Authorization": f"Bearer {device}", "Upload-Length": "10"})
    assert no_version.status_code == 412
    assert (await create(api, device, 3 * 1024 * 1024)).status_code == 413  # over FIELDSYNC_UPLOAD_MAX_BYTES


async def test_a_file_that_is_not_an_allowed_type_is_refused_by_its_bytes_not_its_name(api: Api) -> None:
    _, _, device = await rep_device(api)
    body = b"%PDF-1.7\n" + os.urandom(2000)  # PDFs are not allowed by this deployment's setting
    created = await create(api, device, len(body), filename="shelf.jpg", filetype="image/jpeg")
    refused = await patch(api, device, created.headers["Location"], 0, body)
    assert refused.status_code == 415 and "application/pdf" in refused.json()["error"]
    gone = await api.http.head(created.headers["Location"], headers=auth(device))
    assert gone.status_code == 404  # nothing to resume: the upload is gone


async def test_a_patch_at_the_wrong_offset_is_a_conflict_and_head_tells_where_to_resume(api: Api) -> None:
    _, _, device = await rep_device(api)
    photo = jpeg()
    location = (await create(api, device, len(photo))).headers["Location"]
    assert (await patch(api, device, location, 0, photo[:1000])).headers["Upload-Offset"] == "1000"
    assert (await patch(api, device, location, 0, photo[1000:2000])).status_code == 409
    head = await api.http.head(location, headers=auth(device))
    assert (head.headers["Upload-Offset"], head.headers["Upload-Length"]) == ("1000", str(len(photo)))
    assert "Upload-Expires" in head.headers
    bad = await patch(api, device, location, 1000, photo[1000:], **{"Upload-Checksum": "sha256 " + "A" * 44})
    assert bad.status_code == 460
    good_sum = base64.b64encode(hashlib.sha256(photo[1000:]).digest()).decode()
    done = await patch(api, device, location, 1000, photo[1000:], **{"Upload-Checksum": f"sha256 {good_sum}"})
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(photo))


async def test_creation_with_upload_and_a_known_sha256_completes_at_once(api: Api, services) -> None:
    _, _, device = await rep_device(api)
    photo = jpeg()
    digest = hashlib.sha256(photo).hexdigest()
    first = await api.http.post(
        "/files/",
        content=photo,
        headers={
            **auth(device),
            "Upload-Length": str(len(photo)),
            "Upload-Metadata": meta(attachmentId="photo-1", sha256=digest),
            "Content-Type": "application/offset+octet-stream",
        },
    )
    assert first.status_code == 201 and first.headers["Upload-Offset"] == str(len(photo))
    assert first.headers["Location"].endswith("/files/photo-1")  # the id the app chose offline
    second = await create(api, device, len(photo), attachmentId="photo-2", sha256=digest)
    assert second.headers["Upload-Offset"] == str(len(photo))  # not one byte sent again
    assert await services.store.db[storage.CONTENTS].count_documents({}) == 1
    assert await services.store.db[f"{storage.BUCKET}.files"].count_documents({}) == 1  # photo-2 sent nothing
    read = await api.http.get("/files/photo-2", headers={"Authorization": f"Bearer {device}"})
    assert read.content == photo and read.headers["content-type"] == "image/jpeg"


async def test_an_unfinished_upload_can_be_terminated_a_finished_one_cannot(api: Api) -> None:
    _, _, device = await rep_device(api)
    photo = jpeg()
    location = (await create(api, device, len(photo))).headers["Location"]
    await patch(api, device, location, 0, photo[:500])
    assert (await api.http.delete(location, headers=auth(device))).status_code == 204
    assert (await api.http.head(location, headers=auth(device))).status_code == 404
    finished = (await create(api, device, len(photo))).headers["Location"]
    await patch(api, device, finished, 0, photo)
    assert (await api.http.delete(finished, headers=auth(device))).status_code == 409


async def test_photos_are_read_like_records_a_rep_its_own_staff_and_integrators_all(api: Api) -> None:
    _, _, device = await rep_device(api, "Aisyah")
    _, other_rep, other_device = await rep_device(api, "Budi")
    _, manager = await api.user("Mei", "MANAGER")
    _, integrator = await api.user("Warehouse", "INTEGRATOR")
    photo = jpeg()
    location = (await create(api, device, len(photo))).headers["Location"]
    half = await api.http.get(location, headers={"Authorization": f"Bearer {manager}"})
    assert half.status_code == 404  # not uploaded yet
    await patch(api, device, location, 0, photo)
    for token, status in ((device, 200), (manager, 200), (integrator, 200), (other_rep, 404), (other_device, 404)):
        response = await api.http.get(location, headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == status, token
    thumb = await api.http.get(f"{location}/thumbnail", headers={"Authorization": f"Bearer {manager}"})
    assert thumb.headers["content-type"] == "image/jpeg"
    with Image.open(io.BytesIO(thumb.content)) as small:
        assert max(small.size) <= 320 and small.size[0] == 2 * small.size[1]


async def test_abandoned_uploads_expire_with_their_bytes(settings: Settings, services) -> None:
    app = create_app(dataclasses.replace(settings, upload_expire_hours=0))
    transport = httpx.ASGITransport(app=app)
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        api = Api(http)
        _, _, device = await rep_device(api)
        location = (await create(api, device, 5000)).headers["Location"]
        assert (await patch(api, device, location, 0, jpeg()[:3000])).status_code == 410  # expired already
        await app.state.fieldsync["services"].uploads.expire()
    assert await services.store.db[storage.COLLECTION].count_documents({}) == 0
    assert await services.store.db[f"{storage.BUCKET}.chunks"].count_documents({}) == 0
