"""``/files/``: the photo channel. tus 1.0.0 for uploads, plain GET for reading.

Thin: authenticate, parse tus headers, call the upload channel, map its answer (or
its ``ProtocolError``) to HTTP. Uploads need a device token; reading follows the
records' scope (a rep its own photos; managers, admins and integrators all).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from service.api.rate_limit import budget_key
from service.auth.access import AuthError
from service.auth.roles import Principal
from service.auth.tokens import bearer
from service.uploads import protocol, storage, thumbnails
from service.uploads.budget import TooManyUploads
from service.uploads.channel import BodyInterrupted, UploadChannel, is_device
from service.uploads.protocol import ProtocolError
from service.uploads.storage import Upload

if TYPE_CHECKING:
    from service.services import Services

PREFIX = "/files/"


def routes() -> list[Route]:
    return [
        Route("/files", collection, methods=["OPTIONS", "POST"]),
        Route("/files/", collection, methods=["OPTIONS", "POST"]),
        Route("/files/{upload_id}", item, methods=["OPTIONS", "HEAD", "PATCH", "DELETE", "GET"]),
        Route("/files/{upload_id}/thumbnail", thumbnail, methods=["GET"]),
    ]


def _services(request: Request) -> Services:
    return request.app.state.fieldsync["services"]


def _tus(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {"Tus-Resumable": protocol.VERSION, "Cache-Control": "no-store", **(headers or {})}


def _error(error: ProtocolError) -> Response:
    headers = _tus()
    if isinstance(error, TooManyUploads):
        headers["Retry-After"] = str(error.retry_after)
    if error.status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"error": str(error)}, status_code=error.status, headers=headers)


def _upload_headers(upload: Upload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset)}
    if not upload.complete:
        headers["Upload-Expires"] = protocol.expires_header(upload.expires_at)
    return headers


async def _caller(request: Request, services: Services) -> Principal:
    token = bearer(request.headers.get("authorization"))
    services.uploads.budget.take_request(budget_key(token, request.client.host if request.client else None))
    try:
        return await services.access.authenticate(token)
    except AuthError as error:  # its message never holds the token
        raise ProtocolError(401, str(error)) from None


async def _device(request: Request, services: Services) -> Principal:
    principal = await _caller(request, services)
    if not is_device(principal):
        raise ProtocolError(403, "uploads need a device token (registerDevice)")
    return principal


async def _body(request: Request) -> AsyncIterator[bytes]:
    try:
        async for piece in request.stream():
            if piece:
                yield piece
    except ClientDisconnect:
        raise BodyInterrupted from None


def _options(channel: UploadChannel) -> Response:
    return Response(
        status_code=204,
        headers={
            "Tus-Resumable": protocol.VERSION,
            "Tus-Version": protocol.VERSION,
            "Tus-Extension": protocol.EXTENSIONS,
            "Tus-Max-Size": str(channel.rules.max_bytes),
            "Tus-Checksum-Algorithm": protocol.checksum_algorithms(),
        },
    )


async def collection(request: Request) -> Response:
    """OPTIONS (what the server speaks) and POST (creation, creation-with-upload)."""
    services = _services(request)
    channel = services.uploads
    if request.method == "OPTIONS":
        return _options(channel)
    try:
        protocol.require_version(request.headers.get("tus-resumable"))
        device = await _device(request, services)
        length = protocol.parse_length(request.headers.get("upload-length"), channel.rules)
        metadata = protocol.parse_metadata(request.headers.get("upload-metadata"))
        with_body = request.headers.get("content-type") == protocol.OFFSET_CONTENT_TYPE
        upload = await channel.create(device, length, metadata, _body(request) if with_body else None)
    except ProtocolError as error:
        return _error(error)
    location = f"{str(request.base_url).rstrip('/')}{PREFIX}{upload.id}"
    return Response(status_code=201, headers=_tus({"Location": location, **_upload_headers(upload)}))


async def item(request: Request) -> Response:
    services = _services(request)
    channel = services.uploads
    upload_id = request.path_params["upload_id"]
    if request.method == "OPTIONS":
        return _options(channel)
    if request.method == "GET":
        return await _read(request, services, upload_id)
    try:
        protocol.require_version(request.headers.get("tus-resumable"))
        device = await _device(request, services)
        if request.method == "DELETE":
            await channel.terminate(device, upload_id)
            return Response(status_code=204, headers=_tus())
        if request.method == "HEAD":
            upload = await channel.status(device, upload_id)
            headers = {"Upload-Length": str(upload.length), **_upload_headers(upload)}
            return Response(status_code=200, headers=_tus(headers))
        if request.headers.get("content-type") != protocol.OFFSET_CONTENT_TYPE:
            raise ProtocolError(415, f"PATCH bodies are {protocol.OFFSET_CONTENT_TYPE}")
        offset = protocol.parse_offset(request.headers.get("upload-offset"))
        checksum = protocol.parse_checksum(request.headers.get("upload-checksum"))
        upload = await channel.append(device, upload_id, offset, _body(request), checksum)
    except ProtocolError as error:
        return _error(error)
    return Response(status_code=204, headers=_tus(_upload_headers(upload)))


async def _read(request: Request, services: Services, upload_id: str) -> Response:
    """GET: the photo's bytes, streamed from GridFS a chunk at a time."""
    try:
        upload = await services.uploads.readable(await _caller(request, services), upload_id)
    except ProtocolError as error:
        return _error(error)
    assert upload.sha256 is not None
    headers = {
        "Content-Length": str(upload.length),
        "ETag": f'"{upload.sha256}"',
        "Cache-Control": "private, max-age=31536000, immutable",
    }
    pieces = storage.read_files(services.store, upload.content_files)
    return StreamingResponse(pieces, media_type=upload.content_type, headers=headers)


async def thumbnail(request: Request) -> Response:
    """GET: a small JPEG of the photo for the console (made once per content, with Pillow)."""
    services = _services(request)
    try:
        upload = await services.uploads.readable(await _caller(request, services), request.path_params["upload_id"])
        image = await thumbnails.of(services.store, upload)
    except ProtocolError as error:
        return _error(error)
    return Response(image, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})
