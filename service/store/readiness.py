"""Is the store ready for this service? A read and a small write, together bounded in time.

A ping alone answers while writes fail (a full disk, a transaction holding the embedded
store's only writer), so ``/readyz`` also writes one tiny document.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from service.store.database import Store
from service.store.unavailable import NOT_WRITABLE, TIMED_OUT, as_unavailable

COLLECTION = "readiness"


async def check(store: Store, timeout: float) -> str | None:
    """None when the store reads and writes within ``timeout`` seconds; else why not (see ``unavailable.REASONS``)."""
    try:
        async with asyncio.timeout(timeout):
            await store.db.command("ping")
            await store.db[COLLECTION].update_one({"_id": "probe"}, {"$set": {"at": datetime.now(UTC)}}, upsert=True)
    except TimeoutError:
        return TIMED_OUT
    except Exception as error:
        failure = as_unavailable(error)
        return failure.reason if failure else NOT_WRITABLE
    return None
