"""One phone sending one photo with tuspy, as its own process (it imports only tuspy, so it starts fast).

python -m tests.e2e.tus_upload BASE_URL DEVICE_TOKEN PATH ATTACHMENT_ID
"""

from __future__ import annotations

import sys

from tusclient import client as tus

PATCH_BYTES = 1024 * 1024  # a phone on patchy 4G sends small PATCHes


def main(base: str, token: str, path: str, attachment_id: str) -> None:
    phone = tus.TusClient(f"{base}/files/", headers={"Authorization": f"Bearer {token}"})
    phone.uploader(path, chunk_size=PATCH_BYTES, metadata={"attachmentId": attachment_id}).upload()


if __name__ == "__main__":
    main(*sys.argv[1:5])
