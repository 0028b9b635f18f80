"""The ``users``, ``tokens`` and ``devices`` collections, and the revocation epoch.

The epoch (the sequence's counter of revocations, ``service/store/sequence.py``) goes up
after every revocation is written, so a service instance that remembered who a token
belongs to can tell, with one read by ``_id`` or in a push's own transaction, whether
anything was revoked since (``AccessService.authenticate``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.client_session import AsyncClientSession

from service.auth.roles import Role
from service.store import held_connection, sequence
from service.store.database import Store
from service.store.write_batch import WriteBatch

USERS, TOKENS, DEVICES = "users", "tokens", "devices"
INDEXES = {
    USERS: [],
    TOKENS: [
        IndexModel([("tokenId", ASCENDING)], name="token_id", unique=True),
        IndexModel([("userId", ASCENDING)], name="user"),
        IndexModel([("deviceId", ASCENDING)], name="device"),
    ],
    DEVICES: [IndexModel([("userId", ASCENDING)], name="user")],
}


@dataclass(frozen=True)
class User:
    id: str
    name: str
    role: Role
    active: bool = True


@dataclass(frozen=True)
class Token:
    id: str
    user_id: str
    hash: str
    created_at: datetime
    device_id: str | None = None
    expires_at: datetime | None = None
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class Device:
    id: str
    user_id: str
    name: str
    platform: str
    app_version: str | None
    registered_at: datetime
    last_sync_at: datetime | None = None
    queue_depth: int | None = None
    queue_growing_since: datetime | None = None  # when the reported queue stopped going down
    revoked_at: datetime | None = None
    # Whether refusals and conflicts were ever recorded for this device (0: never; None: not known, a
    # device older than the mark): while one is 0, a push from it has none of that kind to read.
    refusals_recorded: int | None = None
    conflicts_recorded: int | None = None
    photos_referenced: int | None = None  # the same for photos its records pointed at (``syncStatus`` reads them)


def _user(document: dict[str, Any]) -> User:
    return User(document["_id"], document["name"], Role(document["role"]), document.get("active", True))


def _token(document: dict[str, Any]) -> Token:
    return Token(
        id=document["tokenId"],
        user_id=document["userId"],
        hash=document["_id"],
        created_at=document["createdAt"],
        device_id=document.get("deviceId"),
        expires_at=document.get("expiresAt"),
        revoked_at=document.get("revokedAt"),
    )


def _device(document: dict[str, Any]) -> Device:
    return Device(
        id=document["_id"],
        user_id=document["userId"],
        name=document["name"],
        platform=document["platform"],
        app_version=document.get("appVersion"),
        registered_at=document["registeredAt"],
        last_sync_at=document.get("lastSyncAt"),
        queue_depth=document.get("queueDepth"),
        queue_growing_since=document.get("queueGrowingSince"),
        revoked_at=document.get("revokedAt"),
        refusals_recorded=document.get("refusalsRecorded"),
        conflicts_recorded=document.get("conflictsRecorded"),
        photos_referenced=document.get("photosReferenced"),
    )


async def insert_user(store: Store, user: User, session: AsyncClientSession | None = None) -> None:
    document = {"_id": user.id, "name": user.name, "role": user.role.value, "active": user.active}
    await store.db[USERS].insert_one(document, session=session)


async def get_user(store: Store, user_id: str) -> User | None:
    document = await store.db[USERS].find_one({"_id": user_id})
    return _user(document) if document else None


async def get_users(store: Store, user_ids: list[str]) -> dict[str, User]:
    cursor = store.db[USERS].find({"_id": {"$in": sorted(set(user_ids))}})
    return {user.id: user for user in map(_user, await cursor.to_list())}


class KnownUsers:
    """Users by id for what live feeds show of them, each read once: a user is never changed once created
    (nothing here updates a user), so what was read stays true. At most ``AT_MOST`` are kept."""

    AT_MOST = 10_000

    def __init__(self, store: Store) -> None:
        self._store = store
        self._known: dict[str, User] = {}

    def known(self, user_id: str) -> User | None:
        """The user, if it was read before (no read)."""
        return self._known.get(user_id)

    async def get_many(self, user_ids: list[str]) -> dict[str, User]:
        """The users of ``user_ids`` that exist; one read for those not known yet, none when all are."""
        if missing := [user_id for user_id in user_ids if user_id not in self._known]:
            found = await get_users(self._store, missing)
            if len(self._known) + len(found) > self.AT_MOST:
                self._known.clear()
            self._known.update(found)
        return {user_id: self._known[user_id] for user_id in user_ids if user_id in self._known}


async def list_users(store: Store, role: Role | None = None) -> list[User]:
    query = {"role": role.value} if role else {}
    return [_user(d) for d in await store.db[USERS].find(query).sort("_id", ASCENDING).to_list()]


async def insert_token(store: Store, token: Token, session: AsyncClientSession | None = None) -> None:
    document = {
        "_id": token.hash,
        "tokenId": token.id,
        "userId": token.user_id,
        "deviceId": token.device_id,
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "revokedAt": token.revoked_at,
    }
    await store.db[TOKENS].insert_one(document, session=session)


async def find_token(store: Store, hash_: str) -> Token | None:
    document = await store.db[TOKENS].find_one({"_id": hash_})
    return _token(document) if document else None


async def get_token(store: Store, token_id: str) -> Token | None:
    document = await store.db[TOKENS].find_one({"tokenId": token_id})
    return _token(document) if document else None


async def revoke_tokens(store: Store, query: dict[str, Any], at: datetime) -> int:
    result = await store.db[TOKENS].update_many({**query, "revokedAt": None}, {"$set": {"revokedAt": at}})
    await sequence.count_revocation(store)
    return result.modified_count


async def revocation_epoch(store: Store) -> int:
    """How many revocations have been written (it only goes up)."""
    return await sequence.revocations(store)


async def insert_device(store: Store, device: Device, session: AsyncClientSession | None = None) -> None:
    document = {
        "_id": device.id,
        "userId": device.user_id,
        "name": device.name,
        "platform": device.platform,
        "appVersion": device.app_version,
        "registeredAt": device.registered_at,
        "lastSyncAt": None,
        "queueDepth": None,
        "queueGrowingSince": None,
        "revokedAt": None,
        "refusalsRecorded": 0,
        "conflictsRecorded": 0,
        "photosReferenced": 0,
    }
    await store.db[DEVICES].insert_one(document, session=session)


def note_recorded(
    writes: WriteBatch,
    refusals: Iterable[str],
    conflicts: Iterable[str],
    photos: Iterable[str],
    known: Device | None = None,
) -> None:
    """Mark the devices (by id) that refusals and conflicts were just recorded for, and whose records just
    pointed at photos, in the same transaction; what ``known`` (a device as this transaction read it) already
    has marked costs no write."""
    marks: dict[str, dict[str, int]] = {}
    for field, device_ids, already in (
        ("refusalsRecorded", refusals, known and known.refusals_recorded),
        ("conflictsRecorded", conflicts, known and known.conflicts_recorded),
        ("photosReferenced", photos, known and known.photos_referenced),
    ):
        for device_id in device_ids:
            if device_id and not (already and known and device_id == known.id):
                marks.setdefault(device_id, {})[field] = 1
    writes.add(DEVICES, [UpdateOne({"_id": device_id}, {"$max": mark}) for device_id, mark in marks.items()])


async def get_device(store: Store, device_id: str) -> Device | None:
    document = await store.db[DEVICES].find_one({"_id": device_id})
    return _device(document) if document else None


async def list_devices(store: Store, user_id: str | None = None) -> list[Device]:
    query = {"userId": user_id} if user_id else {}
    return [_device(d) for d in await store.db[DEVICES].find(query).sort("_id", ASCENDING).to_list()]


async def revoke_device(store: Store, device_id: str, at: datetime) -> Device | None:
    document = await store.db[DEVICES].find_one_and_update(
        {"_id": device_id}, {"$set": {"revokedAt": at}}, return_document=ReturnDocument.AFTER
    )
    await sequence.count_revocation(store)
    return _device(document) if document else None


async def record_sync(
    store: Store,
    device_id: str,
    *,
    at: datetime,
    queue_depth: int | None,
    app_version: str | None,
    session: AsyncClientSession | None = None,
) -> Device | None:
    """A device synced or reported its status: last sync, queue depth, app version.

    ``queueGrowingSince`` marks when the reported queue stopped going down; it
    clears as soon as the queue shrinks or empties.
    """
    updates: dict[str, Any] = {"lastSyncAt": at}
    if app_version:
        updates["appVersion"] = app_version  # a plain $set: stored as sent, never read as an expression
    if queue_depth is not None:
        updates["queueDepth"] = queue_depth
    before = await held_connection.find_one_and_update(
        store.db[DEVICES], {"_id": device_id}, {"$set": updates}, session
    )
    if before is None:
        return None
    after = {**before, **updates}
    if queue_depth is not None:
        shrinking = queue_depth == 0 or queue_depth < (before.get("queueDepth") or 0)
        growing_since = None if shrinking else before.get("queueGrowingSince") or at
        if growing_since != before.get("queueGrowingSince"):
            await store.db[DEVICES].update_one(
                {"_id": device_id}, {"$set": {"queueGrowingSince": growing_since}}, session=session
            )
        after["queueGrowingSince"] = growing_since
    return _device(after)


async def get_devices(store: Store, device_ids: list[str]) -> dict[str, Device]:
    cursor = store.db[DEVICES].find({"_id": {"$in": sorted(set(device_ids))}})
    return {device.id: device for device in map(_device, await cursor.to_list())}
