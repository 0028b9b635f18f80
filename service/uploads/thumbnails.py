"""Thumbnails for the console: a JPEG at most ``SIZE`` pixels on a side, made with Pillow
once per content (keyed by sha256) and kept in ``thumbnails``.

Pillow decodes JPEG, PNG and WebP here; HEIC and PDF have no thumbnail (415). The
image is decoded in a worker thread, never on the event loop, and images larger than
``MAX_SOURCE_BYTES`` or ``MAX_PIXELS`` are refused rather than decoded.
"""

from __future__ import annotations

import asyncio
import io

from bson import Binary
from PIL import Image, ImageOps

from service.store.database import Store
from service.uploads import storage
from service.uploads.protocol import ProtocolError
from service.uploads.storage import Upload

COLLECTION = "thumbnails"
SIZE = 320
MAX_SOURCE_BYTES = 32 * 1024 * 1024
MAX_PIXELS = 64_000_000
DECODABLE = frozenset({"image/jpeg", "image/png", "image/webp"})


async def of(store: Store, upload: Upload) -> bytes:
    assert upload.sha256 is not None
    cached = await store.db[COLLECTION].find_one({"_id": upload.sha256})
    if cached is not None:
        return bytes(cached["jpeg"])
    if upload.content_type not in DECODABLE:
        raise ProtocolError(415, f"no thumbnail for {upload.content_type}; GET the file itself")
    if upload.length > MAX_SOURCE_BYTES:
        raise ProtocolError(413, f"no thumbnail for images over {MAX_SOURCE_BYTES} bytes")
    source = b"".join([piece async for piece in storage.read_files(store, upload.content_files)])
    jpeg = await asyncio.to_thread(make, source)
    await store.db[COLLECTION].update_one({"_id": upload.sha256}, {"$set": {"jpeg": Binary(jpeg)}}, upsert=True)
    return jpeg


def make(source: bytes) -> bytes:
    """A JPEG thumbnail of an image, upright (EXIF orientation applied)."""
    try:
        with Image.open(io.BytesIO(source)) as image:
            if image.width * image.height > MAX_PIXELS:
                raise ProtocolError(413, f"no thumbnail for images over {MAX_PIXELS} pixels")
            image.draft("RGB", (SIZE, SIZE))  # JPEG: decode at a fraction of the size
            small = ImageOps.exif_transpose(image).convert("RGB")
            small.thumbnail((SIZE, SIZE))
            out = io.BytesIO()
            small.save(out, "JPEG", quality=80)
            return out.getvalue()
    except ProtocolError:
        raise
    except (OSError, Image.DecompressionBombError, ValueError) as error:
        raise ProtocolError(415, f"the image cannot be decoded: {type(error).__name__}") from None
