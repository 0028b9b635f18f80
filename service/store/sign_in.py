"""The ``credentials`` (name and password hash of people who sign in) and ``sessions`` collections."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from pymongo import ASCENDING, IndexModel

from service.store.database import Store

CREDENTIALS, SESSIONS = "credentials", "sessions"
INDEXES = {
    CREDENTIALS: [IndexModel([("userId", ASCENDING)], name="user")],
    SESSIONS: [
        IndexModel([("sessionId", ASCENDING)], name="session_id", unique=True),
        IndexModel([("userId", ASCENDING)], name="user"),
        IndexModel([("expiresAt", ASCENDING)], name="expiry", expireAfterSeconds=0),
    ],
}


@dataclass(frozen=True)
class Credential:
    login: str  # the sign-in name, case-folded: unique
    user_id: str
    hash: str
    changed_at: datetime


@dataclass(frozen=True)
class Session:
    id: str  # public: names the session in events, never authenticates
    hash: str  # SHA-256 of the cookie's secret
    user_id: str
    csrf: str
    created_at: datetime
    expires_at: datetime


def login_of(name: str) -> str:
    return name.strip().casefold()


async def put_credential(store: Store, credential: Credential) -> None:
    """Set a user's sign-in name and password; a login held by another user raises DuplicateKeyError."""
    await store.db[CREDENTIALS].update_one(
        {"_id": credential.login, "userId": credential.user_id},
        {"$set": {"hash": credential.hash, "changedAt": credential.changed_at}},
        upsert=True,
    )
    await store.db[CREDENTIALS].delete_many({"userId": credential.user_id, "_id": {"$ne": credential.login}})


async def find_credential(store: Store, login: str) -> Credential | None:
    document = await store.db[CREDENTIALS].find_one({"_id": login})
    if document is None:
        return None
    return Credential(document["_id"], document["userId"], document["hash"], document["changedAt"])


async def credential_of_user(store: Store, user_id: str) -> Credential | None:
    document = await store.db[CREDENTIALS].find_one({"userId": user_id})
    if document is None:
        return None
    return Credential(document["_id"], document["userId"], document["hash"], document["changedAt"])


async def insert_session(store: Store, session: Session) -> None:
    await store.db[SESSIONS].insert_one(
        {
            "_id": session.hash,
            "sessionId": session.id,
            "userId": session.user_id,
            "csrf": session.csrf,
            "createdAt": session.created_at,
            "expiresAt": session.expires_at,
        }
    )


async def find_session(store: Store, hash_: str) -> Session | None:
    document = await store.db[SESSIONS].find_one({"_id": hash_})
    if document is None:
        return None
    return Session(
        id=document["sessionId"],
        hash=document["_id"],
        user_id=document["userId"],
        csrf=document["csrf"],
        created_at=document["createdAt"],
        expires_at=document["expiresAt"],
    )


async def delete_session(store: Store, hash_: str) -> None:
    await store.db[SESSIONS].delete_one({"_id": hash_})


async def delete_sessions_of_user(store: Store, user_id: str, keep: str | None = None) -> list[str]:
    """End a user's sessions (all but the one whose public id is ``keep``); their public ids."""
    query = {"userId": user_id, **({"sessionId": {"$ne": keep}} if keep else {})}
    ended = [document["sessionId"] async for document in store.db[SESSIONS].find(query, {"sessionId": 1})]
    await store.db[SESSIONS].delete_many(query)
    return ended
