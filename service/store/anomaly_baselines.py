"""The ``anomaly_baselines`` collection: what flagging learned of each rep and device (``_id`` rep:<id> / device:<id>).

At most one read (both documents by ``_id``) and one write per push chunk; a restart keeps them.
Each document carries its revision (``rev``), and a write replaces only the revision its push
read: a document another push changed since fails the write with a duplicate key, and the push
runs again (``ConcurrentWrite``). So a process may remember the documents it last read or
committed (``Remembered``) and a push that finds both there reads nothing: the write still says
whether they were current.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from pymongo import ReplaceOne
from pymongo.asynchronous.client_session import AsyncClientSession

from service.domain.anomalies import Baselines, DeviceBaseline, RepBaseline
from service.domain.anomalies.baselines import GeoStamp, RecentOrder
from service.domain.composite_ids import composite_id
from service.store import held_connection
from service.store.database import Store
from service.store.write_batch import WriteBatch

COLLECTION = "anomaly_baselines"

Revisions = dict[str, int | None]  # by _id: the revision a push read (None: no document, or one from before revisions)


class Remembered:
    """The baseline documents this process last read or committed, by ``_id`` (the most recent ``AT_MOST``)."""

    AT_MOST = 4096

    def __init__(self) -> None:
        self._documents: OrderedDict[str, dict[str, Any] | None] = OrderedDict()

    def get(self, keys: list[str]) -> dict[str, dict[str, Any] | None] | None:
        """The documents of all ``keys`` (None for one known absent), or None unless all are remembered."""
        if not all(key in self._documents for key in keys):
            return None
        for key in keys:
            self._documents.move_to_end(key)
        return {key: self._documents[key] for key in keys}

    def keep(self, documents: Mapping[str, dict[str, Any] | None]) -> None:
        self._documents.update(documents)
        for key in documents:
            self._documents.move_to_end(key)
        while len(self._documents) > self.AT_MOST:
            self._documents.popitem(last=False)

    def forget(self, keys: list[str]) -> None:
        for key in keys:
            self._documents.pop(key, None)


def _rep_key(rep_id: str) -> str:
    return composite_id("rep", rep_id)


def _device_key(device_id: str) -> str:
    return composite_id("device", device_id)


def _stamp(stamp: GeoStamp | None) -> dict[str, Any] | None:
    if stamp is None:
        return None
    return {
        "lat": stamp.latitude,
        "lon": stamp.longitude,
        "at": stamp.at,
        "outletId": stamp.outlet_id,
        "label": stamp.label,
    }


def _stamp_of(document: dict[str, Any] | None) -> GeoStamp | None:
    if document is None:
        return None
    return GeoStamp(document["lat"], document["lon"], document["at"], document.get("outletId"), document["label"])


def _rep_document(rep: RepBaseline) -> dict[str, Any]:
    return {
        "_id": _rep_key(rep.rep_id),
        "delays": rep.delays,
        "delaySync": rep.delay_sync,
        "orders": [
            {
                "offlineId": o.offline_id,
                "recordId": o.record_id,
                "outletId": o.outlet_id,
                "lines": o.lines,
                "at": o.captured_at,
            }
            for o in rep.orders
        ],
    }


def _rep(rep_id: str, document: dict[str, Any] | None) -> RepBaseline:
    if document is None:
        return RepBaseline(rep_id)
    return RepBaseline(
        rep_id,
        delays=list(document.get("delays", [])),
        delay_sync=document.get("delaySync"),
        orders=[
            RecentOrder(o["offlineId"], o["recordId"], o["outletId"], o["lines"], o["at"])
            for o in document.get("orders", [])
        ],
    )


def _device_document(device: DeviceBaseline) -> dict[str, Any]:
    return {
        "_id": _device_key(device.device_id),
        "trusted": _stamp(device.trusted),
        "suspect": _stamp(device.suspect),
        "stamps": [_stamp(s) for s in device.stamps],
        "skews": device.skews,
        "skewFlagged": device.skew_flagged,
        "queueDepth": device.queue_depth,
        "queueSince": device.queue_since,
        "queueSinceDepth": device.queue_since_depth,
        "queueFlagged": device.queue_flagged,
    }


def _device(device_id: str, document: dict[str, Any] | None) -> DeviceBaseline:
    if document is None:
        return DeviceBaseline(device_id)
    return DeviceBaseline(
        device_id,
        trusted=_stamp_of(document.get("trusted")),
        suspect=_stamp_of(document.get("suspect")),
        stamps=[s for s in map(_stamp_of, document.get("stamps", [])) if s is not None],
        skews=list(document.get("skews", [])),
        skew_flagged=bool(document.get("skewFlagged")),
        queue_depth=document.get("queueDepth"),
        queue_since=document.get("queueSince"),
        queue_since_depth=document.get("queueSinceDepth"),
        queue_flagged=bool(document.get("queueFlagged")),
    )


async def load(
    store: Store,
    rep_id: str,
    device_id: str,
    session: AsyncClientSession | None,
    remembered: Remembered | None = None,
) -> tuple[Baselines, Revisions]:
    """The rep's and the device's baselines (empty ones for a first push) and their revisions: from
    ``remembered`` when it holds both, else in one query (then remembered)."""
    keys = [_rep_key(rep_id), _device_key(device_id)]
    found = remembered.get(keys) if remembered is not None else None
    if found is None:
        documents = await held_connection.find(store.db[COLLECTION], {"_id": {"$in": keys}}, session)
        found = dict.fromkeys(keys) | {document["_id"]: document for document in documents}
        if remembered is not None:
            remembered.keep(found)
    revisions = {key: document.get("rev") if document else None for key, document in found.items()}
    return Baselines(_rep(rep_id, found[keys[0]]), _device(device_id, found[keys[1]])), revisions


def save(writes: WriteBatch, baselines: Baselines, revisions: Revisions) -> dict[str, dict[str, Any]]:
    """Write both baselines over the revisions their push read (ConcurrentWrite when another push changed
    one since); returns the documents to be written, to remember once they commit."""
    documents = [_rep_document(baselines.rep), _device_document(baselines.device)]
    operations = []
    for document in documents:
        read = revisions.get(document["_id"])
        document["rev"] = (read or 0) + 1
        operations.append(ReplaceOne({"_id": document["_id"], "rev": read}, document, upsert=True))
    writes.add(COLLECTION, operations, concurrent="a baseline changed since this push read it")
    return {document["_id"]: document for document in documents}
